//! proctor: the server library. `domain` is pure; everything else is the async shell.

pub mod domain;
