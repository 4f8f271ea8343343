//! Delivery: the worker that hands queued messages to a carrier, the [`Carrier`] trait a real
//! carrier adapter implements, and the simulated carrier of the embedded default.

pub mod carrier;
pub mod simulated;
pub mod worker;

pub use carrier::{Carrier, Submission, SubmitError};
pub use simulated::SimulatedCarrier;
pub use worker::{Worker, WorkerSettings};
