//! The one integration-test binary (one link step keeps builds cheap); one module per area.

mod cli;
mod schema;
