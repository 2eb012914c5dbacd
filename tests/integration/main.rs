//! leadflow's integration and end-to-end tests: one binary, built once.

mod conformance;
mod embedded;
mod infra;
mod moto;
mod rules_cli;
mod support;
