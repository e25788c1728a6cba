#!/usr/bin/env bash
# Builds the DocC documentation of every library product (swift-docc-plugin) with warnings as errors:
# a broken symbol link, an ambiguous reference or a half-documented parameter list fails the build.
#
#   scripts/check-docs.sh                 # every library
#   scripts/check-docs.sh TCPIP           # one
# The archives land in .build/plugins/Swift-DocC/outputs/.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
if ((${#targets[@]} == 0)); then targets=(TCPIPWire TCPIP TCPIPLinks TCPIPSimulation TCPIPNIO TCPIPGateway TCPIPStack); fi
for target in "${targets[@]}"; do
    log=$(mktemp)
    if ! swift package --disable-sandbox generate-documentation --target "$target" --warnings-as-errors >"$log" 2>&1; then
        grep -E -A8 "^(warning|error):" "$log" | head -80 >&2
        rm -f "$log"
        echo "error: the documentation of $target does not build cleanly (above)" >&2
        exit 1
    fi
    rm -f "$log"
    echo "documentation: $target builds without warnings"
done
