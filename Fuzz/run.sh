#!/usr/bin/env bash
# Fuzz/run.sh TARGET SECONDS — build the libFuzzer targets (SwiftPM rebuilds only what changed) and
# run fuzz-TARGET for SECONDS on its committed seed corpus, Corpus/TARGET.
#
# New interesting inputs go to .build/corpus/TARGET (not committed); a crash, leak or timeout stops
# the run with a non-zero status and leaves the input in .build/crashes/TARGET/. Turn it into a
# regression test (Tests/TCPIPTests/Hardening/FuzzRegressionTests.swift) before fixing it.
# The last line is `fuzz target=TARGET executions=N seconds=S status=S`.
# FUZZ_SKIP_BUILD=1 runs what is built (run-all.sh builds once for all targets).
set -euo pipefail
cd "$(dirname "$0")"

target=${1:?usage: Fuzz/run.sh TARGET SECONDS (targets: ipv4 ipv6 datagram tcp address stack udp icmp reassembly rules filter forward)}
seconds=${2:-60}
[[ -d Corpus/$target ]] || { echo "error: no target $target (no Corpus/$target)" >&2; exit 2; }

# -sanitize=fuzzer: coverage instrumentation and libFuzzer itself (each target's @main hands over to
# LLVMFuzzerRunDriver). Release, so a minute is worth many executions; ASan in the Swift code (ours
# and NIO's) catches what bounds checks do not. lld: gold fails on the duplicate main of libFuzzer
# and SwiftPM's entry point rename; lld resolves it to the latter.
flags=(-c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld)
if [[ ${FUZZ_SKIP_BUILD:-0} != 1 ]]; then
    swift build "${flags[@]}" --product "fuzz-$target" >&2
fi
bin=$(swift build "${flags[@]}" --show-bin-path)

mkdir -p ".build/corpus/$target" ".build/crashes/$target"
log=".build/crashes/$target/last-run.log"
status=0
"$bin/fuzz-$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=".build/crashes/$target/" ".build/corpus/$target" "Corpus/$target" 2>"$log" || status=$?
tail -n 25 "$log" >&2
executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
echo "fuzz target=$target executions=${executions:-0} seconds=$seconds status=$status"
exit "$status"
