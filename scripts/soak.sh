#!/usr/bin/env bash
# Soak against the kernel: `tcpip serve --echo --http` on a TUN device in a network namespace of its
# own, impaired at the device (loss, reordering, duplication, corruption), and many concurrent kernel
# clients (scripts/soak.py) for DURATION seconds: echo transfers of random sizes, HTTP downloads the
# server closes first (TIME-WAIT reopened by RFC 6191), abortive closes, half-closes, connects to a
# closed port, over IPv4 and IPv6. Every transfer verified.
#
# Passes (exit 0, last line "SOAK PASS") when the clients saw no failure and no connect timeout, the
# server's RSS did not grow after warming up, and afterwards the server holds nothing but TIME-WAIT.
#
# Usage: sudo scripts/soak.sh [DURATION_SECONDS=600] [WORKERS=120]
#   TCPIP=path/to/tcpip (default .build/debug/tcpip, else .build/release/tcpip)
#   SOAK_IMPAIR=loss=1%,reorder=5%,duplicate=1%,corrupt=0.1%,delay=5ms
# Uses only 198.18.0.0/24 and 2001:db8::/64 inside its namespace, which it deletes on exit.
set -euo pipefail

duration=${1:-600}
workers=${2:-120}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
tcpip=${TCPIP:-}
if [[ -z "$tcpip" ]]; then
    for candidate in "$root/.build/debug/tcpip" "$root/.build/release/tcpip"; do
        [[ -x "$candidate" ]] && { tcpip=$candidate; break; }
    done
fi
[[ -x "$tcpip" ]] || { echo "no tcpip binary; build with: swift build --product tcpip" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "needs root (network namespace, TUN device)" >&2; exit 2; }
impair=${SOAK_IMPAIR:-loss=1%,reorder=5%,duplicate=1%,corrupt=0.1%,delay=5ms}

ns="tcpip-soak-$$"
scratch=$(mktemp -d "/tmp/tcpip-soak-$$-XXXX")
server=""
sampler=""
cleanup() {
    [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null || true
    [[ -n "$server" ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    # The server's log outlives the run, for a failure's post-mortem.
    cp "$scratch/serve.log" "${SOAK_LOG:-/tmp/tcpip-soak-last.log}" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT
trap "exit 1" INT TERM

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev tun0 mode tun
ip -n "$ns" link set tun0 mtu 1500 up
ip -n "$ns" addr add 198.18.0.1/24 dev tun0
ip -n "$ns" addr add 2001:db8::1/64 dev tun0 nodad

mkdir "$scratch/www"
head -c 1000 /dev/urandom > "$scratch/www/small"
head -c 100000 /dev/urandom > "$scratch/www/medium"
head -c 1000000 /dev/urandom > "$scratch/www/large"
head -c 5000000 /dev/urandom > "$scratch/www/huge"

log="$scratch/serve.log"
ip netns exec "$ns" "$tcpip" serve --tun tun0 --address 198.18.0.2/24 --address 2001:db8::2/64 \
    --echo 7 --http 80 --root "$scratch/www" --status-interval 1 --impair "$impair" > "$log" 2>&1 &
server=$!
for _ in $(seq 300); do grep -q READY "$log" && break; kill -0 "$server" || { cat "$log"; exit 1; }; sleep 0.1; done
grep -q READY "$log" || { echo "tcpip did not print READY" >&2; cat "$log"; exit 1; }

# The server's resident set, every 2 s.
rss="$scratch/rss"
( while kill -0 "$server" 2>/dev/null; do
      awk '/^VmRSS/ { print $2 }' "/proc/$server/status" 2>/dev/null >> "$rss" || true
      sleep 2
  done ) &
sampler=$!

echo "soak: $duration s, $workers kernel clients, impair $impair, server pid $server ($tcpip)"
clients_status=0
ip netns exec "$ns" python3 "$here/soak.py" 198.18.0.2 2001:db8::2 7 80 9 "$duration" "$workers" \
    "$scratch/www/small" "$scratch/www/medium" "$scratch/www/large" "$scratch/www/huge" \
    | tee "$scratch/clients.log" || clients_status=$?

# Afterwards: within 30 s nothing but TIME-WAIT (the serve command's `table:` line, printed on change).
table_status=1
for _ in $(seq 60); do
    last=$(grep '^table:' "$log" | tail -1 || true)
    if [[ "$last" == *"not_time_wait=0 "* && "$last" == *"half_open=0 "* ]]; then table_status=0; break; fi
    sleep 0.5
done
kill -0 "$server" 2>/dev/null || { echo "the server died:"; tail -20 "$log"; exit 1; }
echo "server afterwards: ${last:-no table line}"

# RSS: after the first quarter (warming up), the last quarter's peak is not above the second
# quarter's peak by more than 10% + 16 MB.
kill "$sampler" 2>/dev/null || true; sampler=""
rss_status=0
read -r rss_line < <(awk '{ v[NR] = $1 } END {
    n = NR; if (n < 8) { print "samples=" n " too few"; exit }
    q = int(n / 4); a = 0; b = 0
    for (i = q + 1; i <= 2 * q; i++) if (v[i] > a) a = v[i]
    for (i = n - q + 1; i <= n; i++) if (v[i] > b) b = v[i]
    printf "samples=%d first_kb=%d second_quarter_peak_kb=%d last_quarter_peak_kb=%d final_kb=%d grew=%s\n",
        n, v[1], a, b, v[n], (b > a * 1.1 + 16384) ? "yes" : "no" }' "$rss")
echo "server rss: $rss_line"
[[ "$rss_line" == *"grew=no"* ]] || rss_status=1

if [[ $clients_status == 0 && $table_status == 0 && $rss_status == 0 ]]; then
    echo "SOAK PASS"
else
    echo "SOAK FAIL clients=$clients_status table=$table_status rss=$rss_status"
    tail -30 "$log"
    exit 1
fi
