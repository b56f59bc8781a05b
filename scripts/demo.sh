#!/usr/bin/env bash
# Sets up everything on a fresh machine (libtorch, build) and runs the demo on the default models.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/bootstrap.sh
source scripts/env.sh
cargo build --release --quiet
exec target/release/gandissect demo "$@"
