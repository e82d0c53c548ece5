//! The one integration-test binary (one link step keeps builds cheap); one module per area.

mod action;
mod action_image;
mod aws;
mod build;
mod build_buildkit;
mod build_cache;
mod build_dockerignore;
mod cli;
mod cli_cases;
mod e2e;
mod engine_abort;
mod engine_ecs;
mod engine_focused;
mod engine_plans;
mod engine_resume;
mod github;
mod history;
mod incident;
mod moto;
mod schema;
mod services;
mod sim_invariants;
mod sim_property;
mod sim_regressions;
mod sim_support;
mod wiring;
