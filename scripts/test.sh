#!/usr/bin/env bash
# Sets up everything on a fresh machine (libtorch, Chromium for the browser test, build) and
# runs the whole test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/bootstrap.sh
scripts/browser.sh
source scripts/env.sh
cargo test --release "$@"
