#!/usr/bin/env bash
# Instructions per invocation of the consumer bench's three consumers, under callgrind:
# repeatable on a shared machine where wall-clock ratios of small batches are not.
#
#   scripts/bench-instructions.sh [BENCH_BINARY]
#
# Each figure is (instructions of K+1 invocations - instructions of 1) / K, so the process's
# start, the event's construction and the first invocation's warm-up drop out. Each invocation
# includes building a fresh handler (the bench does that outside its timing, for every consumer
# alike). BENCH_BINARY defaults to the one `cargo bench --bench consumer --no-run` builds.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-}
if [[ -z "$binary" ]]; then
  # cargo names it on stderr: "Executable benches/consumer/main.rs (target/release/deps/consumer-…)".
  binary=$(${CARGO:-cargo} bench --locked --bench consumer --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p')
fi
if [[ -z "$binary" || ! -x "$binary" ]]; then
  echo "bench-instructions: no bench binary (${binary:-none}); try: cargo bench --locked --bench consumer --no-run" >&2
  exit 2
fi
command -v valgrind >/dev/null || { echo "bench-instructions: valgrind is not installed" >&2; exit 2; }

# Instructions callgrind counts for K invocations of CONSUMER on an N-record CASE event.
count() {
  local out total
  out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$binary" --calls "$1" "$2" "$3" "$4" 2>&1) || {
    echo "bench-instructions: $binary --calls $* failed:" >&2
    echo "$out" | grep -v '^==' >&2
    exit 1
  }
  total=$(echo "$out" | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
  [[ -n "$total" ]] || { echo "bench-instructions: callgrind printed no total for --calls $*" >&2; exit 1; }
  echo "$total"
}

per_invocation() {
  local consumer=$1 case=$2 n=$3 k=$4 one more
  one=$(count "$consumer" "$case" "$n" 1)
  more=$(count "$consumer" "$case" "$n" $((k + 1)))
  echo $(((more - one) / k))
}

echo "consumer bench under callgrind: instructions per invocation (ratio to the naive floor)"
echo
echo "| records | case | (a) naive floor | (b) as deployed | (c) logs off |"
echo "|---:|---|---:|---:|---:|"
for n in 10 1000; do
  k=$((n >= 1000 ? 5 : 50))
  for case in standard_ok standard_10pct_transient fifo_10_groups; do
    a=$(per_invocation naive "$case" "$n" "$k")
    b=$(per_invocation deployed "$case" "$n" "$k")
    c=$(per_invocation logs_off "$case" "$n" "$k")
    awk -v n="$n" -v case="$case" -v a="$a" -v b="$b" -v c="$c" 'BEGIN {
      printf "| %d | %s | %d | %d (%.2f×) | %d (%.2f×) |\n", n, case, a, b, b / a, c, c / a }'
  done
done
echo
echo "binary: $binary"
