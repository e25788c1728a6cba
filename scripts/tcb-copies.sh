#!/usr/bin/env bash
# Lists the functions of a release binary that copy a whole TCB — call the outlined copy or the
# value witnesses that copy a `TCPConnection` or a `HalfOpenConnection` (about 1.2 KiB each, with
# a dozen retains) — and fails if any of them is on the hot path (the list below).
#
#   swift build -c release --product tcpip && scripts/tcb-copies.sh .build/release/tcpip
#
# Why: a non-mutating method or computed property called on `self` inside a mutating method of
# the TCB can make the optimizer copy the whole struct to pass it as `self` — no warning, no
# change in behaviour, only time. Issue 18 found it three times (`segmentOptionsLength`, `pipe`,
# `pacingRate`), each time by profiling. A debug build copies everywhere; only a release build
# says anything. Not run by CI (it needs a release build); run it after touching the TCB's hot
# methods, see docs/PERFORMANCE.md.
set -euo pipefail
binary=${1:?usage: scripts/tcb-copies.sh RELEASE_BINARY}

# The functions a connection's segments and handshake run through (`bench connrate`, `bench bulk`):
# a copy of the TCB in any of them, or in a closure or specialization of one, fails the check.
# (Not `accept(_:configuration:now:)`: interception builds a TCB in its frame there, once a
# connection.)
hot=(
    TCPConnection.output TCPConnection.sendSegment TCPConnection.sendAck TCPConnection.sendSYN
    TCPConnection.segmentArrives TCPConnection.otherwiseSegmentArrives
    TCPConnection.synSentSegmentArrives TCPConnection.acknowledgmentArrives
    TCPConnection.newDataAcknowledged TCPConnection.processText TCPConnection.finArrives
    TCPConnection.checkSequenceNumber TCPConnection.passesPAWS TCPConnection.advertiseWindow
    TCPConnection.segmentOptions TCPConnection.segmentOptionsLength TCPConnection.pacingRate
    TCPConnection.nextDeadline TCPConnection.timersFired TCPConnection.read TCPConnection.write
    TCPConnection.close TCPConnection.sendDeferredAck TCPConnection.enterTimeWait
    TCPConnection.detectLossesRACK TCPConnection.updatePersistTimer
    Stack.receive Stack.connectionSegmentArrives Stack.halfOpenSegmentArrives
    Stack.listenSegmentArrives Stack.fastOpenSYNArrives Stack.sendSYNACK Stack.open Stack.promote
    "Stack.accept(_:)" Stack.read Stack.write Stack.close Stack.release Stack.removeConnection
    Stack.reduceToTimeWait Stack.connectionActivity Stack.sendDeferredAcks Stack.nextEvent
    Stack.nextDeadline Stack.advanceTime Stack.nextPacketToSend Stack.withConnection
)

demangle() { if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else swift demangle --simplified; fi; }

# caller <TAB> callee, for every call or tail call of a TCB copy.
pairs=$(objdump -d --no-show-raw-insn "$binary" | awk '
    /^[0-9a-f]+ <.*>:$/ { caller = $2; gsub(/[<>:]/, "", caller) }
    /(call|jmp) .*<\$s5TCPIP(13TCPConnection|18HalfOpenConnection)V(WOc|WOy|WOd|Vwcp|Vwca)(Tm)?>/ {
        callee = $NF; gsub(/[<>]/, "", callee); print caller "\t" callee
    }' | sort -u)

# A copy the compiler inlined calls nothing, but needs a TCB's room in the caller's frame: the
# frame size of each function with one of 1 KiB or more (`sub $N, %rsp` in its prologue).
frames=$(objdump -d --no-show-raw-insn "$binary" | awk '
    /^[0-9a-f]+ <.*>:$/ { caller = $2; gsub(/[<>:]/, "", caller); seen = 0 }
    /sub +\$0x[0-9a-f]+,%rsp/ && !seen {
        seen = 1; match($0, /\$0x[0-9a-f]+/); print caller "\t" substr($0, RSTART + 3, RLENGTH - 3)
    }' | while IFS=$'\t' read -r caller hex; do
        if ((16#$hex >= 1024)); then printf '%s\tframe of %d octets\n' "$caller" "$((16#$hex))"; fi
    done)

isHot() {
    local function
    for function in "${hot[@]}"; do
        # "Stack.open(…)", "specialized Stack.open(…)", "closure #1 in Stack.open(…)"; a name
        # with its labels ("Stack.accept(_:)") is that overload only.
        if [[ $function == *")" ]]; then
            if [[ $1 == "$function" || $1 == *" $function" ]]; then return 0; fi
        elif [[ $1 == "$function("* || $1 == *" $function("* ]]; then return 0; fi
    done
    return 1
}

failed=0
while IFS=$'\t' read -r caller callee; do
    [[ -n $caller ]] || continue
    name=$(demangle <<<"$caller")
    what=$(demangle <<<"$callee")
    verdict="cold"
    if isHot "$name"; then verdict="HOT"; failed=1; fi
    printf '%-4s %s\n       -> %s\n' "$verdict" "$name" "$what"
done <<<"$pairs"
while IFS=$'\t' read -r caller frame; do
    [[ -n $caller ]] || continue
    name=$(demangle <<<"$caller")
    # Only the hot functions' frames are reported: the CLI and the benches have large ones.
    if isHot "$name"; then printf 'HOT  %s\n       -> %s\n' "$name" "$frame"; failed=1; fi
done <<<"$frames"

if ((failed)); then
    echo "tcb-copies: a hot function copies a whole TCB or has the room for one (HOT above): make the method it calls on self mutating, or keep it out of line" >&2
    exit 1
fi
echo "tcb-copies: no hot function copies a whole TCB"
