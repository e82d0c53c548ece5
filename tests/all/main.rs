//! The one integration-test binary (one link step keeps builds cheap); one module per area.

mod aws;
mod build;
mod build_dockerignore;
mod cli;
mod github;
mod moto;
mod schema;
mod services;
