//! The one integration-test binary (one link step keeps builds cheap); one module per area.

mod aws;
mod cli;
mod github;
mod moto;
mod schema;
