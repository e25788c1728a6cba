#!/usr/bin/env bash
# scripts/vs-kernel-under-loss.sh [SECONDS] — the kernel's TCP (CUBIC) against ours on the same
# impaired path, through `tcpip route`. Needs root (network namespaces, TUN devices); uses only
# 198.18.0.0/15 inside namespaces of its own, which it deletes afterwards.
#
#   kernel A (sink, 198.18.0.1) ─ ra ─ tcpip route ─ rb ─ kernel B (198.18.2.1)
#                                 │ delay RTT/2 each way, loss on the data direction (ra.out),
#                                 │ and with RATE its bottleneck: rate and drop-tail queue (ra.out)
#   baseline:  kernel B sends (Python socket client, the kernel's default congestion control)
#              KERNEL_HOP=1: from namespace C (198.18.4.2) behind a veth to B, B forwarding
#   contender: `tcpip send` on TUN tb in namespace B (198.18.3.2 behind 198.18.3.1), B forwarding
#
# For each RTT 10/50/200 ms × loss 0/0.1/1/5 % it runs each sender for SECONDS (default 10), or for
# 150 round trips if that is longer (30 s at 200 ms: in 10 s, 50 round trips, slow start and where its
# first loss falls decide a cell, not the loss recovery this table is about), and prints
# one table: goodput into A's application in Mbit/s (bytes the sink read / seconds), and ours/kernel,
# with what the router saw of the data direction for each sender: the fraction of datagrams it
# dropped (the loss the sender really met) and their mean size (wire-sized: 1500 or less).
# The router is the path's bottleneck (its CPU, on shared cores) and rb's ring is its queue: B writes
# each datagram into rb, the router reads them, and a full ring drops in silence (rb's TX dropped, in
# B). With the TUN default of 500 datagrams that queue was a fraction of a round trip's data and it
# dropped only bursts: in cells "without loss" the kernel's sender met 0.1–2.7 % there, uncounted.
# TXQUEUELEN (default 5000) sets the ring of ra and rb, and the loss columns count rb's drops too.
# TCPIP=path picks the binary (default: .build/release/tcpip, built if missing). KERNEL_CC picks the
# kernel sender's congestion control (default cubic, set on its socket with TCP_CONGESTION: a new
# namespace inherits the host's default, which may be bbr, and BBR does not answer loss as CUBIC does).
# TRACE_DIR=dir keeps, per cell and sender (files SENDER-RTT-LOSS.*): `ss -tmi` of the receiving socket
# in A and of the sending socket in B every 0.2 s (.ss-a, .ss-b: rcv_space, rcv_rtt, rcv_ssthresh,
# cwnd, pacing_rate), a header-only capture on A's ra for the first TRACE_SECONDS (default 5) s
# (.pcap), `nstat -a` of A and B at the end (.nstat-a, .nstat-b) and, for ours, `tcpip send --trace`
# (.trace). Tracing costs CPU on the shared cores: leave it off for the table. For tracing only,
# SENDERS="ours" (or "kernel") runs one sender per cell and MIN_RTTS=n shortens the 150 round trips.
# RUNS=n (default 1) runs each sender n times per cell, alternating which goes first (kernel, ours,
# ours, kernel, kernel, ours …) so that a slow drift in the machine's load hits both alike, and
# prints per cell the median goodput of each, the ratio of the medians, each sender's min-max and
# the median loss each met (RUNS=1 prints the one-run table with the datagram sizes, as before).
# With TRACE_DIR and RUNS > 1 the files get the run's number (SENDER-RTT-LOSS-RUN.*); the trace also
# keeps B's counters of its links (rb, tb, vb) and rb's qdisc at the end (.link-b: `ip -s link`,
# `tc -s qdisc`) and the router's log with its counters (.route).
# RATE=Mbit/s (default 500) gives the path a capacity: the router's ra.out sends at most RATE (the data
# direction's bottleneck link) from a drop-tail queue of one bandwidth-delay product at RATE and the
# cell's RTT, in 1500-byte datagrams (at least 100; QUEUE=n sets it for every cell). Both senders
# fill 500 Mbit/s at every RTT of the table on this machine (idle: 1.6-2 Gbit/s each at 10 ms without
# a rate; kernel A's window reaches 21 MB, 1.7 BDP at 200 ms). RATE=0: no rate, the path's only
# limit is the router's and the TUN devices' CPU (the table of the first seven passes). With a rate the loss columns count the
# queue's tail drops too (the router's drops: its random loss and its full queue).
# KERNEL_WMEM (default 33554432, kernel A's tcp_rmem maximum) is the most the kernel sender's send
# buffer may grow to (the maximum of net.ipv4.tcp_wmem in its namespace; 0 leaves the namespace's,
# which it copies from the host: 4 MiB here). At 4 MiB the kernel's sender keeps about 2,000
# segments (2.9 MB) in flight, 105 Mbit/s at 200 ms, whatever the path allows; at 16 MiB (ours'
# maximum, but the kernel counts each skb's overhead) about 8,000, one BDP at 500 Mbit/s and 200 ms.
# KERNEL_HOP=1 (the default; 0: the kernel's sender in B itself, as in the first seven passes) puts the
# kernel's sender in a fourth namespace C behind a veth to B, B forwarding, so that its data crosses
# one forwarding hop in B before rb, as ours does (tb, B, rb).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
[[ $(id -u) -eq 0 ]] || { echo "error: needs root (network namespaces and TUN devices)" >&2; exit 1; }
tcpip=${TCPIP:-.build/release/tcpip}
if [[ ! -x $tcpip ]]; then swift build -c release --product tcpip >&2; fi
tcpip=$(realpath "$tcpip")
rtts=(${RTTS:-10 50 200})
losses=(${LOSSES:-0 0.1 1 5})
work=$(mktemp -d)
ns_r=tcpip-vk-r-$$ ns_a=tcpip-vk-a-$$ ns_b=tcpip-vk-b-$$ ns_c=tcpip-vk-c-$$

teardown() {
    for ns in "$ns_r" "$ns_a" "$ns_b" "$ns_c"; do
        if ip netns list | grep -qw "$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
}
trap 'teardown; rm -rf "$work"' EXIT

# The kernel's side: a sink that reads each connection to its end and reports what it read and for
# how long (first byte of the connection to its end), and a timed sender.
cat >"$work/sink.py" <<'PY'
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.1", 5001)); s.listen(8)
print("READY", flush=True)
while True:
    c, _ = s.accept(); start = time.monotonic(); total = 0
    while True:
        data = c.recv(1 << 18)
        if not data: break
        total += len(data)
    seconds = time.monotonic() - start
    c.close()
    print(f"received={total} seconds={seconds:.3f} mbit_per_s={total * 8 / seconds / 1e6:.2f}", flush=True)
PY
cat >"$work/send.py" <<'PY'
import socket, sys, time
seconds = float(sys.argv[1]); chunk = b"\x5a" * (128 * 1024)
c = socket.socket(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, sys.argv[2].encode())
c.connect(("198.18.0.1", 5001)); end = time.monotonic() + seconds; sent = 0
while time.monotonic() < end: sent += c.send(chunk)
c.shutdown(socket.SHUT_WR)
while c.recv(4096): pass
print(f"sent={sent}", flush=True)
PY

wait_for() {  # FILE PATTERN
    for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "error: no '$2' in $1: $(cat "$1")" >&2; return 1
}

kernel_cc=${KERNEL_CC:-cubic}
txqueuelen=${TXQUEUELEN:-5000}
rate=${RATE:-500}
[[ $rate =~ ^[0-9]+$ ]] || { echo "error: RATE=$rate is not a whole number of Mbit/s" >&2; exit 1; }
[[ -z ${QUEUE:-} || ${QUEUE:-} =~ ^[1-9][0-9]*$ ]] || { echo "error: QUEUE=$QUEUE is not a positive count" >&2; exit 1; }
kernel_hop=${KERNEL_HOP:-1}
kernel_wmem=${KERNEL_WMEM:-33554432}
[[ $kernel_wmem =~ ^[0-9]+$ ]] || { echo "error: KERNEL_WMEM=$kernel_wmem is not a count of bytes" >&2; exit 1; }
[[ $kernel_hop == [01] ]] || { echo "error: KERNEL_HOP=$kernel_hop is neither 0 nor 1" >&2; exit 1; }

# The rate's queue for a round trip of RTT ms: QUEUE, or one bandwidth-delay product in 1500-byte
# datagrams, at least 100.
queue_for() {  # RTT
    if [[ -n ${QUEUE:-} ]]; then echo "$QUEUE"; return; fi
    local bdp=$(( (rate * 1000000 / 1000 * $1 / 8 + 1499) / 1500 ))
    (( bdp > 100 )) && echo "$bdp" || echo 100
}

# One cell: fresh namespaces, the router with this cell's impairment, then SENDER (kernel|ours).
# Prints "GOODPUT LOSS_SEEN_% MEAN_DATAGRAM_BYTES": the last two from the router's drops on ra.out
# and the datagrams A's ra received.
run_cell() {  # RTT LOSS SENDER SECONDS [RUN]
    local half=$(($1 / 2)) loss=$2 sender=$3 seconds=$4 run=${5:-}
    local bottleneck=""
    (( rate == 0 )) || bottleneck=",rate=${rate}mbit,queue=$(queue_for "$1")"
    teardown
    for ns in "$ns_r" "$ns_a" "$ns_b"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
    ip -n "$ns_r" tuntap add dev ra mode tun
    ip -n "$ns_r" tuntap add dev rb mode tun
    : >"$work/route.log"
    ip netns exec "$ns_r" "$tcpip" route --tun ra --tun rb --route 198.18.0.0/24=ra --route 198.18.2.0/23=rb \
        --route 198.18.4.0/24=rb \
        --address ra=198.18.0.254 --address rb=198.18.2.254 \
        --impair "ra.in:delay=${half}ms,seed=7" --impair "ra.out:delay=${half}ms,loss=${loss}%${bottleneck},seed=11" \
        >"$work/route.log" 2>&1 &
    local router=$!
    wait_for "$work/route.log" READY
    ip -n "$ns_r" link set ra netns "$ns_a"
    ip -n "$ns_r" link set rb netns "$ns_b"
    ip -n "$ns_a" addr add 198.18.0.1/24 dev ra; ip -n "$ns_a" link set ra up
    ip -n "$ns_a" route add 198.18.2.0/23 dev ra; ip -n "$ns_a" route add 198.18.4.0/24 dev ra
    ip -n "$ns_b" addr add 198.18.2.1/24 dev rb; ip -n "$ns_b" link set rb up
    # The data direction's device queue: B's TCP (or B forwarding ours) writes into rb's ring, the
    # router reads it. A full ring drops in silence (rb's TX dropped), before the router can count.
    ip -n "$ns_a" link set ra txqueuelen "$txqueuelen"; ip -n "$ns_b" link set rb txqueuelen "$txqueuelen"
    ip -n "$ns_b" route add 198.18.0.0/24 dev rb
    # B forwards: ours from tb, the kernel's from C (KERNEL_HOP); an endpoint's own TCP is the same either way.
    ip netns exec "$ns_b" sysctl -q -w net.ipv4.ip_forward=1
    # The kernel's sender: in B, or (KERNEL_HOP) in C behind a veth to B, B forwarding.
    local ns_k=$ns_b
    if [[ $sender == kernel && $kernel_hop == 1 ]]; then
        ns_k=$ns_c
        ip netns add "$ns_c"; ip -n "$ns_c" link set lo up
        ip -n "$ns_b" link add vb type veth peer name vc netns "$ns_c"
        ip -n "$ns_b" addr add 198.18.4.1/24 dev vb; ip -n "$ns_b" link set vb up
        ip -n "$ns_c" addr add 198.18.4.2/24 dev vc; ip -n "$ns_c" link set vc up
        ip -n "$ns_c" route add default via 198.18.4.1
    fi
    : >"$work/sink.log"
    ip netns exec "$ns_a" python3 "$work/sink.py" >"$work/sink.log" 2>&1 &
    wait_for "$work/sink.log" READY
    local tracers=() prefix=""
    if [[ -n ${TRACE_DIR:-} ]]; then
        mkdir -p "$TRACE_DIR"; prefix="$TRACE_DIR/$sender-$1-$2${run:+-$run}"
        ip netns exec "$ns_a" timeout "${TRACE_SECONDS:-5}" tcpdump -i ra -s 96 -w "$prefix.pcap" -U tcp >/dev/null 2>&1 &
        tracers+=($!)
        for side in a b; do
            local ns=$ns_a filter="sport = :5001"
            [[ $side == b ]] && ns=$ns_k filter="dport = :5001"
            ( while true; do echo "T $(date +%s.%N)"; ip netns exec "$ns" ss -tmi "$filter"; sleep 0.2; done ) >"$prefix.ss-$side" 2>&1 &
            tracers+=($!)
        done
    fi
    if [[ $sender == kernel ]]; then
        (( kernel_wmem == 0 )) || ip netns exec "$ns_k" sysctl -q -w net.ipv4.tcp_wmem="4096 16384 $kernel_wmem"
        ip netns exec "$ns_k" python3 "$work/send.py" "$seconds" "$kernel_cc" >/dev/null
    else
        ip -n "$ns_b" tuntap add dev tb mode tun
        ip -n "$ns_b" addr add 198.18.3.1/24 dev tb; ip -n "$ns_b" link set tb up
        ip netns exec "$ns_b" "$tcpip" send --tun tb --address 198.18.3.2 --to 198.18.0.1:5001 \
            --seconds "$seconds" --log-level error ${prefix:+--trace} >"${prefix:-/dev/null}${prefix:+.trace}" 2>&1 || true
    fi
    if [[ -n $prefix ]]; then
        for pid in "${tracers[@]}"; do kill "$pid" 2>/dev/null || true; done
        ip netns exec "$ns_a" nstat -a >"$prefix.nstat-a" 2>&1 || true
        ip netns exec "$ns_k" nstat -a >"$prefix.nstat-b" 2>&1 || true
        { ip -n "$ns_b" -s -s link show; ip netns exec "$ns_b" tc -s qdisc show dev rb; } >"$prefix.link-b" 2>&1 || true
    fi
    local goodput=0
    if wait_for "$work/sink.log" mbit_per_s; then
        goodput=$(sed -n 's/.*mbit_per_s=\([0-9.]*\).*/\1/p' "$work/sink.log" | tail -n 1)
    fi
    # What reached A by ra, and what the router dropped (only ra.out has loss): the loss met per datagram.
    local rx; rx=$(ip -n "$ns_a" -s -j link show ra | python3 -c "import json,sys; s=json.load(sys.stdin)[0]['stats64']['rx']; print(s['packets'], s['bytes'])")
    local ring; ring=$(ip -n "$ns_b" -s -j link show rb | python3 -c "import json,sys; print(json.load(sys.stdin)[0]['stats64']['tx']['dropped'])")
    kill -TERM "$router" 2>/dev/null || true
    wait_for "$work/route.log" impaired_dropped >/dev/null 2>&1 || true
    [[ -z $prefix ]] || cp "$work/route.log" "$prefix.route"
    local dropped; dropped=$(sed -n 's/.*impaired_dropped=\([0-9]*\).*/\1/p' "$work/route.log" | tail -n 1)
    python3 -c "
p, b = map(int, '$rx'.split()); d = int('${dropped:-0}') + int('${ring:-0}')
print('$goodput', f'{100 * d / max(1, d + p):.3f}', f'{b / max(1, p):.0f}')"
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
runs=${RUNS:-1}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "error: RUNS=$runs is not a positive count" >&2; exit 1; }
if (( runs == 1 )); then
    echo "# vs-kernel-under-loss: ${seconds} s per run or 150 RTTs if longer, $(nproc) cores, load average before: $load"
else
    echo "# vs-kernel-under-loss: ${seconds} s per run or 150 RTTs if longer, $runs runs per sender and cell, alternating"
    echo "# (k o o k …), $(nproc) cores, load average before: $load"
fi
if (( rate == 0 )); then
    echo "# path: no rate (the router's and the TUN devices' CPU is the bottleneck)"
else
    queues=""; for rtt in "${rtts[@]}"; do queues+=" $(queue_for "$rtt") at $rtt ms,"; done
    echo "# path: bottleneck ${rate} Mbit/s on the data direction (router's ra.out), drop-tail queue of"
    echo "#${queues%,} datagrams ($( [[ -n ${QUEUE:-} ]] && echo "QUEUE=$QUEUE" || echo "one BDP at the rate and RTT, at least 100"))"
fi
echo "# kernel sender: $kernel_cc ($(uname -r)), send buffer up to $( (( kernel_wmem == 0 )) && echo "the namespace's" || echo "$kernel_wmem B")$( (( kernel_hop == 1 )) && echo ", in C behind a veth to B, B forwarding" );"
echo "# goodput into the receiving application (kernel A), Mbit/s;"
dropped_by="the router (loss$( (( rate == 0 )) || echo " and queue tail drops"))"
if (( runs == 1 )); then
    echo "# ratio = ours / kernel; k_/o_loss: % of data datagrams $dropped_by"
    echo "# or rb's ring ($txqueuelen) dropped; k_/o_size: their mean bytes"
    printf '%-7s %-7s %10s %10s %7s %8s %8s %7s %7s\n' "rtt_ms" "loss_%" "kernel" "ours" "ratio" "k_loss" "o_loss" "k_size" "o_size"
else
    echo "# kernel, ours: medians of the runs; ratio = median ours / median kernel; k_/o_range: min-max of the"
    echo "# runs; k_/o_loss: median % of data datagrams $dropped_by or rb's"
    echo "# ring ($txqueuelen) dropped"
    printf '%-6s %-6s %9s %9s %6s %15s %15s %7s %7s\n' "rtt_ms" "loss_%" "kernel" "ours" "ratio" "k_range" "o_range" "k_loss" "o_loss"
fi
min_rtts=${MIN_RTTS:-150}
senders=" ${SENDERS:-kernel ours} "
for rtt in "${rtts[@]}"; do
    cell_seconds=$(( (rtt * min_rtts + 999) / 1000 ))
    (( cell_seconds > seconds )) || cell_seconds=$seconds
    for loss in "${losses[@]}"; do
        k_goodputs=() k_losses=() k_sizes=() o_goodputs=() o_losses=() o_sizes=()
        for (( run = 1; run <= runs; run++ )); do
            order="kernel ours" tag=""
            (( run % 2 == 1 )) || order="ours kernel"
            (( runs == 1 )) || tag=$run
            for sender in $order; do
                [[ $senders == *" $sender "* ]] || continue
                read -r goodput seen size < <(run_cell "$rtt" "$loss" "$sender" "$cell_seconds" "$tag")
                if [[ $sender == kernel ]]; then
                    k_goodputs+=("$goodput") k_losses+=("$seen") k_sizes+=("$size")
                else
                    o_goodputs+=("$goodput") o_losses+=("$seen") o_sizes+=("$size")
                fi
            done
        done
        if (( runs == 1 )); then
            kernel=${k_goodputs[0]:-0} k_loss=${k_losses[0]:--} k_size=${k_sizes[0]:--}
            ours=${o_goodputs[0]:-0} o_loss=${o_losses[0]:--} o_size=${o_sizes[0]:--}
            ratio=$(python3 -c "k=float('$kernel' or 0); o=float('$ours' or 0); print(f'{o/k:.2f}' if k > 0 else 'n/a')")
            printf '%-7s %-7s %10s %10s %7s %8s %8s %7s %7s\n' "$rtt" "$loss" "$kernel" "$ours" "$ratio" "$k_loss" "$o_loss" "$k_size" "$o_size"
        else
            python3 - "$rtt" "$loss" "${k_goodputs[*]:-}" "${o_goodputs[*]:-}" "${k_losses[*]:-}" "${o_losses[*]:-}" <<'PY'
import statistics, sys
rtt, loss, *columns = sys.argv[1:]
kg, og, kl, ol = ([float(v) for v in c.split()] for c in columns)
median = lambda v: statistics.median(v) if v else None
fmt = lambda v, d=2: "-" if v is None else f"{v:.{d}f}"
span = lambda v: f"{min(v):.2f}-{max(v):.2f}" if v else "-"
k, o = median(kg), median(og)
ratio = f"{o / k:.2f}" if k and o is not None else "n/a"
print(f"{rtt:<6} {loss:<6} {fmt(k):>9} {fmt(o):>9} {ratio:>6} {span(kg):>15} {span(og):>15} "
      f"{fmt(median(kl), 3):>7} {fmt(median(ol), 3):>7}")
PY
        fi
    done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
