//! The verdict pipeline: one worker per bus partition folds each session's events, persists
//! events and verdicts, runs the server-side timers (challenges at random moments, answer
//! deadlines, lease expiry) and pushes effects to learners' sockets.

pub mod worker;
