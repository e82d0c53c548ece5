//! cutover: tag-to-traffic blue/green deploys for AWS ECS.
//!
//! The binary in `main.rs` is a thin shell over this library: `cli` turns arguments into
//! plain requests, `commands` runs them, and everything below speaks cutover's own types.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod aws;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod engine;
pub mod exit;
pub mod history;
pub mod image;
pub mod logging;
pub mod model;
pub mod ports;
pub mod probe;
pub mod read_only;
pub mod report;
pub mod sim;
pub mod version;
