//! End-to-end tests against real PostgreSQL, Redis and the `pacer-api` / `pacer-worker`
//! binaries. See `tests/src/lib.rs` for the harness.

mod ai_coach;
mod ai_training;
mod analytics;
mod auth;
mod cli;
mod events;
mod jobs;
mod openapi;
mod reliability;
mod validation;
