#!/usr/bin/env bash
# Fuzz/run-all.sh SECONDS — every fuzz target for SECONDS each (default 60); fails if any crashed.
# Prints one `fuzz target=… executions=…` line per target and the total.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
targets=(ipv4 ipv6 datagram tcp address stack)
failed=()
total=0
for target in "${targets[@]}"; do
    line=$(./run.sh "$target" "$seconds") || failed+=("$target")
    echo "$line"
    executions=$(sed -n 's/.*executions=\([0-9]*\).*/\1/p' <<<"$line")
    total=$((total + ${executions:-0}))
done
echo "fuzz total executions=$total targets=${#targets[@]} seconds_each=$seconds"
if ((${#failed[@]} > 0)); then
    echo "error: fuzz targets crashed: ${failed[*]} (inputs in Fuzz/.build/crashes/)" >&2
    exit 1
fi
