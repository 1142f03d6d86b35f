#![doc = include_str!("../README.md")]

pub mod ai_training;
pub mod analytics;
pub mod auth;
pub mod batch;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod jobs;
pub mod keys;
pub mod lifecycle;
pub mod principle;
pub mod queue;
pub mod telemetry;
pub mod validate;

pub use error::{Error, FieldError, Result};
