//! leadflow's integration and end-to-end tests: one binary, built once.

mod rules_cli;
mod support;
