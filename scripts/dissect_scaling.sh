#!/bin/bash
# Dissection cost as work grows: time, peak memory and statistics size of the world generator's
# layer4 dissection (world-seg, default settings) at several sample counts.
#
#   scripts/dissect_scaling.sh [OUT] [SIZES...]
#
# OUT defaults to out/scaling, SIZES to "1000 10000 100000:100". A size N:B stops after B
# batches of pass 1 (--max-batches B) and is extrapolated from them (see docs/performance.md);
# other sizes run fully. Prints one line per size: images asked, images through pass 1, pass 1 and pass 2
# seconds, peak resident memory, and the size of the pass-1 statistics file (sketch and top-k).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/scaling}
shift || true
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(1000 10000 100000:100)
bin=target/release/gandissect
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
printf "%-8s %-8s %10s %10s %12s %14s\n" images "done" "pass1 s" "pass2 s" "peak MiB" "pass1 stats KiB"
for spec in "${sizes[@]}"; do
  n=${spec%%:*}
  limit=()
  [[ $spec == *:* ]] && limit=(--max-batches "${spec##*:}")
  dir=$out/$n
  rm -rf "$dir"
  log=$dir.log
  mkdir -p "$out"
  /usr/bin/time -v "$bin" dissect --model world-proggan --layer layer4 --segmenter world-seg \
    --samples "$n" --out "$dir" "${limit[@]}" >"$log" 2>&1 || { cat "$log"; exit 1; }
  p1=$(grep -o 'pass 1: [0-9]* images in [0-9.]* s' "$log" | awk '{print $6}' || true)
  p2=$(grep -o 'pass 2: [0-9]* images in [0-9.]* s' "$log" | awk '{print $6}' || true)
  done1=$(grep -o 'pass 1: [0-9]* images' "$log" | awk '{print $3}' || true)
  if [ -z "$done1" ]; then
    # stopped on purpose in pass 1: the whole run's time is pass 1's (plus loading)
    done1=$(grep -o 'stopped in pass 1 after [0-9]*' "$log" | awk '{print $6}' || true)
    p1=$(grep -o '^took [0-9.]*' "$log" | awk '{print $2}' || true)
  fi
  rss=$(awk '/Maximum resident/ {printf "%.0f", $6/1024}' "$log")
  stats=$(du -k "$dir"/stats/pass1.shard-0-of-1.safetensors | awk '{print $1}')
  printf "%-8s %-8s %10s %10s %12s %14s\n" "$n" "${done1:-?}" "${p1:--}" "${p2:--}" "$rss" "$stats"
done
