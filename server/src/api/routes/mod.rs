//! HTTP handlers, one module per resource. Each handler authenticates, calls one use case in
//! `app`, and shapes the response; nothing else.

pub mod appeals;
pub mod catalog;
pub mod demo;
pub mod face;
pub mod health;
pub mod metrics;
pub mod oauth;
pub mod review;
pub mod sessions;
