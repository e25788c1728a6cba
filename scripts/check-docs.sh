#!/usr/bin/env bash
# Builds the DocC documentation of every library product (swift-docc-plugin) with warnings as errors:
# a broken symbol link, an ambiguous reference or a half-documented parameter list fails the build.
# Then checks from the symbol graphs DocC read that every public symbol has a doc comment
# (scripts/doc-coverage.py), so that a new public symbol without one fails CI.
#
#   scripts/check-docs.sh                 # every library
#   scripts/check-docs.sh TCPIP           # one
# The archives land in .build/plugins/Swift-DocC/outputs/.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
if ((${#targets[@]} == 0)); then targets=(TCPIPWire TCPIP TCPIPLinks TCPIPSimulation TCPIPNIO TCPIPGateway TCPIPStack); fi
for target in "${targets[@]}"; do
    # Last run's symbol graphs out of the way, so that the coverage check reads this build's.
    find .build -path "*/extracted-symbols/*/$target" -type d -prune -exec rm -rf {} + 2>/dev/null || true
    log=$(mktemp)
    if ! swift package --disable-sandbox generate-documentation --target "$target" --warnings-as-errors >"$log" 2>&1; then
        grep -E -A8 "^(warning|error):" "$log" | head -80 >&2
        rm -f "$log"
        echo "error: the documentation of $target does not build cleanly (above)" >&2
        exit 1
    fi
    rm -f "$log"
    echo "documentation: $target builds without warnings"
    # The symbol graphs the plugin extracted for this target (under the package directory's name).
    graphs=$(find .build -path "*/extracted-symbols/*/$target" -type d | head -1)
    if [[ -z $graphs ]]; then
        echo "error: no symbol graphs of $target under .build/*/extracted-symbols" >&2
        exit 1
    fi
    if ! python3 scripts/doc-coverage.py "$target" "$graphs"; then
        echo "error: a public symbol of $target has no doc comment (above): write one" >&2
        exit 1
    fi
done
