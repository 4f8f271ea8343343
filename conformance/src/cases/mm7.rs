//! MMS over MM7: the MMS centre's `POST /v1/carrier/mm7` — 401 without its credentials, 413 for
//! a body declared larger than any MMS; with them (`--mm7-credentials`), a delivery report for a
//! MessageID the deployment does not know (200, kept) and malformed XML (400, a SOAP Fault with
//! status 4004) — and, with a live key, an inbound MMS whose media item the suite reads back
//! (`messages_media_view/200`).

use crate::{
    check::check_response,
    client::{Auth, Request, Response},
    ctx::{numbers, Ctx},
};

const OP: &str = "carrier_mm7_create";
const PATH: &str = "/v1/carrier/mm7";
const NS: &str = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4";
/// The image the suite delivers in an inbound MMS (ASCII bytes, so that the answer's text is
/// them exactly).
const PICTURE: &str = "GIF89a conformance picture";

/// A DeliveryReportReq for `message_id`.
fn delivery_report(message_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <env:Header><mm7:TransactionID xmlns:mm7=\"{NS}\" env:mustUnderstand=\"1\">conformance-dr</mm7:TransactionID></env:Header>\
         <env:Body><DeliveryReportReq xmlns=\"{NS}\"><MM7Version>6.8.0</MM7Version>\
         <MessageID>{message_id}</MessageID><Recipient><Number>+15550000000</Number></Recipient>\
         <Sender><Number>+15550000001</Number></Sender><Date>2026-01-01T00:00:00Z</Date>\
         <MMStatus>Retrieved</MMStatus></DeliveryReportReq></env:Body></env:Envelope>"
    )
}

/// A DeliverReq from `sender` to `recipient` with `text` and [`PICTURE`], as `multipart/related`;
/// its Content-Type and body.
fn deliver(sender: &str, recipient: &str, text: &str) -> (String, String) {
    let soap = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <env:Header><mm7:TransactionID xmlns:mm7=\"{NS}\" env:mustUnderstand=\"1\">conformance-mo</mm7:TransactionID></env:Header>\
         <env:Body><DeliverReq xmlns=\"{NS}\"><MM7Version>6.8.0</MM7Version>\
         <Sender><Number>{sender}</Number></Sender><Recipients><To><Number>{recipient}</Number></To></Recipients>\
         <Content href=\"cid:content\"/></DeliverReq></env:Body></env:Envelope>"
    );
    let body = format!(
        "--outer\r\nContent-Type: text/xml; charset=utf-8\r\nContent-ID: <soap>\r\n\r\n{soap}\r\n\
         --outer\r\nContent-Type: multipart/mixed; boundary=\"inner\"\r\nContent-ID: <content>\r\n\r\n\
         --inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-ID: <text>\r\n\r\n{text}\r\n\
         --inner\r\nContent-Type: image/gif\r\nContent-ID: <picture>\r\n\r\n{PICTURE}\r\n\
         --inner--\r\n\r\n--outer--\r\n"
    );
    (
        "multipart/related; type=\"text/xml\"; start=\"<soap>\"; boundary=\"outer\"".into(),
        body,
    )
}

/// The problems of a SOAP answer whose MM7 StatusCode should be `code`.
fn soap_status(code: u32) -> impl FnOnce(&Response) -> Vec<String> {
    move |r: &Response| {
        let wanted = format!("<StatusCode>{code}</StatusCode>");
        if r.text.contains(&wanted) {
            vec![]
        } else {
            vec![format!("the SOAP answer carries no {wanted}")]
        }
    }
}

pub fn cases(ctx: &mut Ctx) {
    if ctx.spec.operation(OP).is_none() {
        return;
    }
    let unknown = format!("conformance-{}", ctx.uuid().simple());
    let report = delivery_report(&unknown);
    ctx.expect(
        "no MMS centre credentials",
        OP,
        401,
        Request::new("POST", PATH)
            .auth(Auth::None)
            .raw(Some("text/xml"), report.clone()),
        soap_status(4001),
    );
    if !ctx.past_deadline() {
        let mark = ctx.target.mark();
        let op = ctx.spec.operation(OP).cloned();
        let problems = match ctx.target.send_declared_too_large(
            PATH,
            "text/xml",
            1 << 30,
            ctx.options.request_timeout,
        ) {
            Ok(r) => {
                let mut problems = check_response(ctx.spec, ctx.schemas, op.as_ref(), &r);
                if r.status != 413 {
                    problems.push(format!("a body declared at 1 GiB answered {}", r.status));
                }
                problems
            }
            Err(err) => vec![format!("a body declared at 1 GiB: {err:#}")],
        };
        ctx.record(OP, 413, "a body declared at 1 GiB", problems, mark);
    }
    let Some((user, password)) = ctx.options.mm7_credentials.clone() else {
        let reason = "needs the MMS centre's credentials (--mm7-credentials)";
        ctx.not_provable_after(
            &[(OP, 200), (OP, 400), ("messages_media_view", 200)],
            reason,
        );
        return;
    };
    let basic = || Auth::Basic(user.clone(), password.clone());
    ctx.expect(
        "a delivery report for a MessageID no message has",
        OP,
        200,
        Request::new("POST", PATH)
            .auth(basic())
            .raw(Some("text/xml"), report),
        |r| {
            let mut problems = soap_status(1000)(r);
            if !r.text.contains("DeliveryReportRsp") {
                problems.push("the answer is not a DeliveryReportRsp".into());
            }
            problems
        },
    );
    ctx.expect(
        "malformed XML",
        OP,
        400,
        Request::new("POST", PATH)
            .auth(basic())
            .raw(Some("text/xml"), "<env:Envelope"),
        soap_status(4004),
    );
    if ctx.test_mode {
        ctx.matrix.not_applicable(
            "messages_media_view",
            200,
            "an inbound MMS over MM7 is live traffic: run the suite with a live key too".into(),
        );
        return;
    }
    // An inbound MMS to the organization's number, found in its messages, its picture read back.
    let text = format!("conformance picture {}", ctx.uuid().simple());
    let (content_type, body) = deliver(&ctx.number(numbers::MMS_SENDER), &ctx.from, &text);
    let delivered = ctx.prepare(
        "deliver an inbound MMS over MM7",
        Request::new("POST", PATH)
            .auth(basic())
            .raw(Some(&content_type), body),
        200,
    );
    let listed = delivered.and_then(|_| {
        ctx.prepare(
            "list the inbound messages",
            Request::new("GET", "/v1/messages?direction=inbound&limit=100"),
            200,
        )
    });
    let media_url = listed.and_then(|r| {
        r.json
            .as_ref()
            .and_then(|b| b["data"].as_array().cloned())
            .into_iter()
            .flatten()
            .find(|m| m["text"] == serde_json::json!(text))
            .and_then(|m| m["media_urls"][0].as_str().map(str::to_owned))
            .ok_or_else(|| {
                "setup: the inbound MMS is not among the messages, with a media URL".to_owned()
            })
    });
    match media_url {
        Ok(url) => {
            ctx.expect(
                "an inbound MMS's picture",
                "messages_media_view",
                200,
                Request::new("GET", url),
                |r| {
                    let mut problems = vec![];
                    if r.text != PICTURE {
                        problems.push(format!("the bytes are not the picture: {:?}", r.text));
                    }
                    if r.header("content-type") != Some("image/gif") {
                        problems.push(format!(
                            "Content-Type {:?}, delivered as image/gif",
                            r.header("content-type")
                        ));
                    }
                    problems
                },
            );
        }
        Err(reason) => ctx.not_provable_after(&[("messages_media_view", 200)], &reason),
    }
}
