#!/usr/bin/env bash
# Fuzz/run-all.sh SECONDS — builds every fuzz target once, then runs each for SECONDS (default 60);
# fails if any crashed. FUZZ_JOBS=N runs N targets at a time (default 1: one core each, as measured).
# Prints one `fuzz target=… executions=…` line per target and the total.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
jobs=${FUZZ_JOBS:-1}
targets=(ipv4 ipv6 datagram tcp address stack udp icmp reassembly rules filter forward)

swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld >&2 || exit 1

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
running=0
for target in "${targets[@]}"; do
    (FUZZ_SKIP_BUILD=1 ./run.sh "$target" "$seconds" >"$results/$target" 2>"$results/$target.err"; echo $? >"$results/$target.status") &
    running=$((running + 1))
    if ((running >= jobs)); then wait -n; running=$((running - 1)); fi
done
wait

failed=()
total=0
for target in "${targets[@]}"; do
    cat "$results/$target"
    [[ $(cat "$results/$target.status") == 0 ]] || { failed+=("$target"); cat "$results/$target.err" >&2; }
    executions=$(sed -n 's/.*executions=\([0-9]*\).*/\1/p' "$results/$target")
    total=$((total + ${executions:-0}))
done
echo "fuzz total executions=$total targets=${#targets[@]} seconds_each=$seconds"
if ((${#failed[@]} > 0)); then
    echo "error: fuzz targets crashed: ${failed[*]} (inputs in Fuzz/.build/crashes/)" >&2
    exit 1
fi
