#!/usr/bin/env bash
# Builds the package and fails if the compiler warns about any of our own sources (Sources/, Tests/,
# Examples/, Benchmarks/, Fuzz/). Dependencies' warnings are theirs, not ours, and are not counted.
#
#   scripts/check-warnings.sh            # debug build, tests included
#   scripts/check-warnings.sh release    # release build of the products
#
# An incremental build recompiles only what changed and so repeats only those warnings: run it on a
# fresh clone (as CI does) or after `swift package clean` to see them all.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mode=${1:-debug}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

if [[ $mode == release ]]; then
    swift build -c release 2>&1 | tee "$log" >/dev/null || { tail -50 "$log"; exit 1; }
else
    swift build --build-tests 2>&1 | tee "$log" >/dev/null || { tail -50 "$log"; exit 1; }
fi

# A warning names its file first: /abs/path/File.swift:12:3: warning: …; SwiftPM's own warnings about
# our targets (unhandled files, say) name the target instead.
ours=$(grep -E "^(${root}/(Sources|Tests|Examples|Benchmarks|Fuzz)/[^:]+:[0-9]+:[0-9]+: warning:|warning: '[^']+': )" "$log" \
    | grep -v "/.build/" | sort -u || true)
if [[ -n $ours ]]; then
    echo "error: the $mode build warns about our own sources:" >&2
    echo "$ours" >&2
    exit 1
fi
echo "warnings: none from our own sources ($mode build)"
