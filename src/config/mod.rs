//! Configuration: layout discovery, settings, variables merge, template rendering.

pub mod duration;
mod error;
pub mod settings;

pub use error::ConfigError;
