//! `GET /healthz`: answers without a key.

use crate::{
    client::{Auth, Request},
    ctx::{no_extra, Ctx},
};

pub fn cases(ctx: &mut Ctx) {
    ctx.expect(
        "liveness",
        "health_view",
        200,
        Request::new("GET", "/healthz").auth(Auth::None),
        no_extra,
    );
}
