#!/usr/bin/env bash
# leadflow's one test command, from a fresh clone: `tests/run.sh`.
#
# Formatting and lints, the SAM template through cfn-lint and `sam validate
# --lint`, `sam build` of the arm64 functions as they ship (each checked to be
# an aarch64 executable), then every Rust test in one build (unit and
# table-driven tests, property tests, the integration tests in
# tests/integration, and each benchmark once in test mode, which also checks
# the engine against its hand-written reference; the store conformance suite on
# the embedded store and on DynamoDB and SNS in moto's server; the shipped arm64
# bootstraps under qemu-user against a local Lambda runtime API; the web app in
# headless Chromium, from Debian's packages), then the rule tests of rules/
# through the CLI.
#
# moto is installed from PyPI into .venv (once) and started on a free loopback
# port for the run, through infra/moto/serial_server.py (moto's server, one
# request at a time, so that each write is atomic as it is on DynamoDB); when it
# cannot be installed or started, the run fails.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
MOTO_VERSION="5.2.5"
CFN_LINT_VERSION="1.58.0"
SAM_CLI_VERSION="1.170.0"
CARGO_LAMBDA_VERSION="1.9.2"

step "format: cargo fmt --check"
cargo fmt --all -- --check

step "lint: cargo clippy"
# Without incremental caches, as on a fresh clone: rustc's limits (such as the
# type-layout depth of a Lambda function's future) then bind here as in CI.
CARGO_INCREMENTAL=0 cargo clippy --workspace --all-targets -- -D warnings

step "tools: moto[server] $MOTO_VERSION, cfn-lint $CFN_LINT_VERSION, aws-sam-cli $SAM_CLI_VERSION, cargo-lambda $CARGO_LAMBDA_VERSION in .venv"
if [ ! -x .venv/bin/pip ] || ! .venv/bin/pip freeze 2>/dev/null | grep -qx "moto==$MOTO_VERSION" \
    || ! .venv/bin/pip freeze | grep -qx "cfn-lint==$CFN_LINT_VERSION" \
    || ! .venv/bin/pip freeze | grep -qx "aws-sam-cli==$SAM_CLI_VERSION" \
    || ! .venv/bin/pip freeze | grep -qx "cargo-lambda==$CARGO_LAMBDA_VERSION"; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check \
        "moto[server]==$MOTO_VERSION" "cfn-lint==$CFN_LINT_VERSION" "aws-sam-cli==$SAM_CLI_VERSION" \
        "cargo-lambda==$CARGO_LAMBDA_VERSION"
fi

step "template: cfn-lint and sam validate --lint"
.venv/bin/cfn-lint template.yaml infra/subscriptions.yaml
AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 .venv/bin/sam validate --lint --template template.yaml
step "sam build: the arm64 bootstraps that ship, as the README's deploy section builds them"
# cargo-lambda (with Zig, from PyPI) cross-compiles; Rust's standard library for
# the target comes from rustup.
rustup target add aarch64-unknown-linux-gnu
started=$(date +%s)
PATH="$PWD/.venv/bin:$PATH" AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 .venv/bin/sam build
echo "sam build took $(( $(date +%s) - started )) s"
functions=$(.venv/bin/python -c 'import re,sys; print(" ".join(re.findall(r"^  (\w+Function):\n    Type: AWS::Serverless::Function", open("template.yaml").read(), re.M)))')
[ -n "$functions" ] || { echo "no functions found in template.yaml" >&2; exit 1; }
for function in $functions; do
    bootstrap=".aws-sam/build/$function/bootstrap"
    [ -x "$bootstrap" ] || { echo "$bootstrap is missing" >&2; exit 1; }
    # An ELF file (7f 45 4c 46), 64-bit, whose machine (bytes 18-19) is AArch64 (0xb7).
    header=$(od -A n -t x1 -N 20 "$bootstrap" | tr -d ' \n')
    case "$header" in
        7f454c4602*b700) echo "$function: aarch64 ELF, $(stat -c %s "$bootstrap") bytes" ;;
        *) echo "$bootstrap is not an aarch64 ELF (header $header)" >&2; exit 1 ;;
    esac
done

step "emulator: qemu-user and the arm64 C library (Debian's qemu-user, libc6-arm64-cross)"
# The arm64 bootstraps run under user-mode emulation in the integration tests.
if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
    apt-get install -y -q qemu-user libc6-arm64-cross >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q qemu-user libc6-arm64-cross >/dev/null; }
fi
qemu-aarch64 --version | head -n 1

step "browser: Debian's chromium and chromium-driver, for the web app's tests in headless Chromium"
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    apt-get install -y -q chromium chromium-driver >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }
fi
/usr/bin/chromium --version
export LEADFLOW_CHROMIUM=/usr/bin/chromium LEADFLOW_CHROMEDRIVER=/usr/bin/chromedriver

step "emulator: moto on a free loopback port"
port=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
.venv/bin/python infra/moto/serial_server.py -H 127.0.0.1 -p "$port" > target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    if ! kill -0 "$moto_pid" 2>/dev/null; then echo "moto exited; see target/moto.log" >&2; exit 1; fi
    sleep 0.2
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "moto did not start on port $port" >&2; exit 1; }
export LEADFLOW_MOTO_ENDPOINT="http://127.0.0.1:$port"
export LEADFLOW_MOTO_PYTHON="$PWD/.venv/bin/python"
echo "moto on $LEADFLOW_MOTO_ENDPOINT"

step "tests: cargo test"
cargo test --workspace --all-targets

step "rules: leadflow rules check, leadflow rules test"
cargo run -q -- rules check
cargo run -q -- rules test

