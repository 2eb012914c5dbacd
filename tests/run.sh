#!/usr/bin/env bash
# leadflow's one test command, from a fresh clone: `tests/run.sh`.
#
# Formatting and lints, then every Rust test in one build (unit and table-driven
# tests, property tests, the integration tests in tests/integration, and each
# benchmark once in test mode, which also checks the engine against its
# hand-written reference), then the rule tests of rules/ through the CLI.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "format: cargo fmt --check"
cargo fmt --all -- --check

step "lint: cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "tests: cargo test"
cargo test --workspace --all-targets

step "rules: leadflow rules check, leadflow rules test"
cargo run -q -- rules check
cargo run -q -- rules test
