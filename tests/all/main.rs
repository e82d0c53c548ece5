//! The one integration-test binary (one link step keeps builds cheap); one module per area.

mod engine_abort;
mod engine_focused;
mod sim_invariants;
mod sim_property;
mod sim_regressions;
mod sim_support;
