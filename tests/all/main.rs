//! The one integration-test binary (one link step keeps builds cheap); one module per area.

mod aws;
mod cli;
mod moto;
mod schema;
