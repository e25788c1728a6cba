#!/bin/bash
# One pass of the TUN throughput comparison: gVisor netstack, lwIP and this stack, each a sink on
# tun0 in a fresh namespace, fed by the same kernel sender (the peers kit's `tcpbench send`) for
# DUR seconds at MTU 1500. Run as root after `swift build -c release --product tcpip`.
# Uses ../shared/peers (PEERS=... to point elsewhere); prints the kit's metric= lines.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
TCPIP=${TCPIP:-$ROOT/.build/release/tcpip}
[ -x "$TCPIP" ] || { echo "build it first: swift build -c release --product tcpip" >&2; exit 1; }
source "$PEERS/lib.sh"
build_netstackbench
build_lwipsink
build_tcpbench
# One round per run: lib.sh names each namespace after the test and the shell's pid.
MTU=1500 tun_sink_test gvisor_tun_mtu1500_kernel_to_netstack "$BUILD/netstackbench" tun-sink tun0 198.18.0.2 5001
MTU=1500 tun_sink_test lwip_tun_mtu1500_kernel_to_lwip "$BUILD/lwipsink" tun0 198.18.0.2 5001
# Ours as shipped (IFF_VNET_HDR: the kernel offloads checksums and TCP segmentation to us, as to a
# NIC), then with --no-offload: one read per wire-sized datagram, as the two peers above do.
MTU=1500 tun_sink_test swift_tun_mtu1500_kernel_to_swift "$TCPIP" sink --tun tun0 --address 198.18.0.2 --port 5001
MTU=1500 tun_sink_test swift_tun_mtu1500_kernel_to_swift_nooffload "$TCPIP" sink --tun tun0 --address 198.18.0.2 --port 5001 --no-offload
