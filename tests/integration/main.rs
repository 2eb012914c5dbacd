//! leadflow's integration and end-to-end tests: one binary, built once.

mod api;
mod arm64;
mod browser;
mod conformance;
mod cost;
mod embedded;
mod export;
mod faults;
mod import;
mod infra;
mod lambda;
mod moto;
mod report;
mod rules_cli;
mod runtime_api;
mod serve;
mod support;
mod web;
