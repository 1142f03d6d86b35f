//! End-to-end tests against real PostgreSQL, Redis and the `pacer-api` / `pacer-worker`
//! binaries. See `tests/src/lib.rs` for the harness.

mod auth;
mod jobs;
mod reliability;
mod validation;
