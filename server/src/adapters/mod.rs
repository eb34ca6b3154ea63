//! Adapters: the concrete store, bus, evidence store, face check and clock behind the ports.

pub mod bus;
pub mod clock;
pub mod evidence;
pub mod face;
pub mod redis;
pub mod store;
