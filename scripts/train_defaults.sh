#!/usr/bin/env bash
# Trains the three default models from their fixed seeds, in dependency order (the generator is
# measured with the segmenter). Each run resumes from its saved state if interrupted.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/bootstrap.sh
source scripts/env.sh
cargo build --release --quiet
bin=target/release/gandissect
$bin train world-seg --steps 3000 --batch 16 "$@"
$bin train world-vgg16 --steps 1200 --batch 32 "$@"
$bin train world-proggan --steps 8200 --batch 32 "$@"
