#!/bin/bash
# One pass, back to back on this machine: the peers kit (../shared/peers/run-all.sh: Linux, gVisor
# netstack, lwIP), then `tcpip bench`, then the ratios issue 5 sets as targets. Machines here are
# noisy, so only figures from one pass are compared.
#
#   swift build -c release --product tcpip && sudo scripts/bench-vs-peers.sh
#
# DUR=5 seconds per throughput figure (the kit's default), CONNECTIONS=1000000 for the memory figure.
# Everything printed is also saved in .build/bench-vs-peers-<UTC time>.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
TCPIP=${TCPIP:-$ROOT/.build/release/tcpip}
DUR=${DUR:-5}
CONNECTIONS=${CONNECTIONS:-1000000}
[ -x "$TCPIP" ] || { echo "build it first: swift build -c release --product tcpip" >&2; exit 1; }
out=$ROOT/.build/bench-vs-peers-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p "$(dirname "$out")"

{
  (cd "$PEERS" && DUR=$DUR ./run-all.sh)
  echo "# tcpip bench $(date -u +%FT%TZ), $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  "$TCPIP" bench bulk --mtu 1500 --seconds "$DUR"
  "$TCPIP" bench bulk --mtu 65000 --seconds "$DUR"
  "$TCPIP" bench connrate --seconds "$DUR"
  "$TCPIP" bench connrate --seconds "$DUR" --threads 2
  "$TCPIP" bench synflood --seconds "$DUR"
  "$TCPIP" bench memory --connections "$CONNECTIONS"
} 2>&1 | tee "$out"

# The ratios, from the metric lines above.
awk -v connections="$CONNECTIONS" '
  /^metric=/ {
    name = ""; value = ""; peak = ""
    for (i = 1; i <= NF; i++) {
      split($i, kv, "=")
      if (kv[1] == "metric") name = kv[2]
      else if (kv[1] == "value") value = kv[2]
      else if (kv[1] == "peak_rss") peak = kv[2]
    }
    m[name] = value
    if (peak != "") m["peak_rss"] = peak
  }
  function ratio(ours, theirs, floor, label) {
    if (!(ours in m) || !(theirs in m) || m[theirs] == 0) { printf "%-44s missing\n", label; return }
    r = m[ours] / m[theirs]
    printf "%-44s %10.2f x  (floor %s)  %s\n", label, r, floor, (r >= floor ? "met" : "NOT met")
  }
  function atMost(name, ceiling, label, unit) {
    if (!(name in m)) { printf "%-44s missing\n", label; return }
    printf "%-44s %10s %s  (ceiling %s)  %s\n", label, m[name], unit, ceiling, (m[name] <= ceiling ? "met" : "NOT met")
  }
  END {
    print ""
    print "# ratios (issue 5), this pass"
    ratio("tcpip_mem_mtu1500", "gvisor_pipe_mtu1500", 10, "bulk MTU 1500 / gVisor pipe")
    ratio("tcpip_mem_mtu1500", "kernel_lo_mtu1500_nogso_iperf3", 1, "bulk MTU 1500 / Linux lo (no GSO)")
    ratio("tcpip_mem_mtu65000", "gvisor_pipe_mtu65000", 4, "bulk MTU 65000 / gVisor pipe")
    ratio("tcpip_mem_mtu65000", "kernel_lo_mtu65536_iperf3", 0.75, "bulk MTU 65000 / Linux lo MTU 65536")
    ratio("tcpip_mem_connrate", "gvisor_pipe_connrate", 20, "connection rate / gVisor pipe")
    ratio("tcpip_mem_connrate", "kernel_lo_connrate", 5, "connection rate / Linux lo")
    # Two pairs of stacks on two threads: the cores gVisor (GOMAXPROCS=2) and Linux (client and
    # server processes) may use, but two cycles at a time instead of one. Printed apart, not in place
    # of the line above.
    ratio("tcpip_mem_connrate_threads2", "gvisor_pipe_connrate", 20, "connection rate, 2 threads / gVisor pipe")
    if ("tcpip_synflood" in m)
      printf "%-44s %10s SYN/s  (floor 1000000)  %s\n", "SYN cookies, one core", m["tcpip_synflood"], (m["tcpip_synflood"] >= 1000000 ? "met" : "NOT met")
    atMost("tcpip_mem_rss_per_connection", 2048, "resident bytes per idle connection end", "B")
    atMost("tcpip_mem_bytes_per_connection", 2048, "accounted bytes per idle connection end", "B")
    if ("peak_rss" in m)
      printf "%-44s %10.2f GiB (ceiling 4 GiB)  %s\n", "peak RSS, " connections " connections (both ends)", m["peak_rss"] / 2^30, (m["peak_rss"] <= 2^32 ? "met" : "NOT met")
  }' "$out" | tee -a "$out"
echo "# saved to $out"
