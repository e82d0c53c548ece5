//! The one integration-test binary (one link step keeps builds cheap); one module per area.

mod build;
mod build_dockerignore;
mod cli;
mod schema;
mod services;
