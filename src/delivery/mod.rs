//! Delivery: the worker that hands queued messages to a carrier, the [`Carrier`] trait a real
//! carrier adapter implements, the simulated carrier of the embedded default (and of test mode),
//! and the SMPP carrier that reaches phones.

pub mod carrier;
pub mod media;
pub mod mm7;
pub mod registry;
pub mod routing;
pub mod simulated;
pub mod smpp;
pub mod webhooks;
pub mod worker;

pub use carrier::{Capabilities, Carrier, CarrierHealth, Room, Submission, SubmitError};
pub use mm7::{Mm7Carrier, Mm7Settings};
pub use routing::{Connection, Route, Routing};
pub use simulated::SimulatedCarrier;
pub use smpp::{SmppCarrier, SmppSettings};
pub use webhooks::{Dispatcher, WebhookSettings};
pub use worker::{Worker, WorkerSettings};
