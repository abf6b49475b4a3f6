#!/usr/bin/env bash
# THE test command of mailferry: deps, formatting, lints, tests, doc tests.
# Extra arguments are passed through to `cargo nextest run`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

total_start=$SECONDS

# step NAME CMD... : run CMD, print its elapsed time (also when it fails).
step() {
  local name=$1
  shift
  local start=$SECONDS rc=0
  echo "==> $name: $*"
  "$@" || rc=$?
  local elapsed=$((SECONDS - start))
  if ((rc == 0)); then
    echo "==> $name: ok (${elapsed}s)"
  else
    echo "==> $name: FAILED with exit code $rc (${elapsed}s)" >&2
    exit "$rc"
  fi
}

nextest_profile=()
if [[ "${CI:-}" == "true" ]]; then
  nextest_profile=(--profile ci)
fi

step "install-test-deps" scripts/install-test-deps.sh
step "fmt" cargo fmt --all -- --check
step "clippy" cargo clippy --workspace --all-targets -- -D warnings
step "nextest" cargo nextest run --workspace --no-fail-fast "${nextest_profile[@]}" "$@"
step "doctest" cargo test --workspace --doc

echo "==> all steps passed ($((SECONDS - total_start))s total)"
