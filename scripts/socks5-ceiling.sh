#!/bin/bash
# The most connections per second a SOCKS5 server allows on this machine: a kernel client doing a
# gateway's cycle straight to the server (no TUN device, no user-space stack), single thread, next
# to the kernel path without SOCKS. docs/gateway-vs-peers.md, pass 9, explains the figures.
#
#   sudo scripts/socks5-ceiling.sh                 # dante (Debian's dante-server)
#   sudo SOCKS=hev HEV_SRV=/path/hev-socks5-server scripts/socks5-ceiling.sh
#
# Namespaces s5c-client-PID / s5c-server-PID like the peers kit's gateway.sh (veth 198.18.1.1 /
# 198.18.1.2, the SOCKS server on 198.18.1.2:1080, the kit's `tcpbench acceptclose` on
# 198.19.0.1:5002); only 198.18.0.0/15; deleted on exit. Per repetition (REPS, default 3), DUR
# seconds each (default 5):
#   kernel_direct_connrate   tcpbench connrate straight to the target (the kit's `direct`)
#   <socks>_greet_connrate   connect, greeting + CONNECT in one write, both replies, EOF, close
#   <socks>_pre_connrate     the same with the greeting done ahead (as `--socks5-preconnect`): the
#                            rate over the timed cycles (CONNECT, reply, EOF, close); wall_rate
#                            counts the greetings done in between too
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
TCPBENCH=$PEERS/build/tcpbench
DUR=${DUR:-5} SOCKS=${SOCKS:-dante} REPS=${REPS:-3}
[ -x "$TCPBENCH" ] || { echo "build the peers kit's tcpbench first ($PEERS/gateway.sh does)" >&2; exit 1; }
CLIENT=$ROOT/.build/socks5-connrate
mkdir -p "$ROOT/.build"
gcc -O2 -Wall -o "$CLIENT" "$ROOT/scripts/socks5-connrate.c" || exit 1
C=s5c-client-$$ S=s5c-server-$$ W=$(mktemp -d /tmp/socks5-ceiling.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.3
  for ns in $C $S; do ip netns pids $ns 2>/dev/null | xargs -r kill -KILL; ip netns del $ns 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
ip netns add $C && ip netns add $S || exit 1
ip -n $C link set lo up; ip -n $S link set lo up
ip link add veth-c netns $C type veth peer name veth-s netns $S
ip -n $C addr add 198.18.1.1/24 dev veth-c; ip -n $S addr add 198.18.1.2/24 dev veth-s
ip -n $C link set veth-c up; ip -n $S link set veth-s up
ip -n $S addr add 198.19.0.1/32 dev lo
ip -n $C route add 198.19.0.0/16 via 198.18.1.2 dev veth-c
ip netns exec $C sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
case $SOCKS in
dante)
  cat > "$W/danted.conf" <<X
logoutput: stderr
internal: 198.18.1.2 port = 1080
external: 198.19.0.1
clientmethod: none
socksmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 0/0 to: 0/0 }
socks pass { from: 0/0 to: 0/0 command: connect }
X
  ip netns exec $S danted -f "$W/danted.conf" -p "$W/danted.pid" >"$W/socks.log" 2>&1 & PIDS+=($!) ;;
hev)
  [ -x "${HEV_SRV:-}" ] || { echo "SOCKS=hev needs HEV_SRV=/path/hev-socks5-server" >&2; exit 1; }
  cat > "$W/socks.yml" <<X
main:
  workers: ${SOCKS_WORKERS:-2}
  port: 1080
  listen-address: '198.18.1.2'
misc:
  limit-nofile: 65535
  log-file: stderr
  log-level: warn
X
  ip netns exec $S "$HEV_SRV" "$W/socks.yml" >"$W/socks.log" 2>&1 & PIDS+=($!) ;;
*) echo "SOCKS=dante or SOCKS=hev" >&2; exit 1 ;;
esac
ip netns exec $S "$TCPBENCH" acceptclose 5002 >"$W/acceptclose.log" 2>&1 & PIDS+=($!)
sleep 1.5
for _ in $(seq "$REPS"); do
  echo "# $(date -u +%FT%TZ) load $(cut -d' ' -f1 /proc/loadavg)"
  ip netns exec $C "$TCPBENCH" connrate 198.19.0.1 5002 "$DUR" kernel_direct_connrate
  ip netns exec $C "$CLIENT" 198.18.1.2 1080 198.19.0.1 5002 "$DUR" greet "${SOCKS}_greet_connrate"
  ip netns exec $C "$CLIENT" 198.18.1.2 1080 198.19.0.1 5002 "$DUR" pre "${SOCKS}_pre_connrate"
done
