//! proctor: the server library. `domain` is pure; everything else is the async shell
//! around it (see ARCHITECTURE.md for the code map and invariants).

pub mod adapters;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod domain;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod ports;
pub mod startup;
