#!/usr/bin/env python3
"""The kernel side of scripts/soak.sh: many concurrent clients against `tcpip serve`.

Usage: soak.py HOST4 HOST6 ECHO_PORT HTTP_PORT CLOSED_PORT SECONDS WORKERS FILES...

Each FILE is served by the HTTP server as /NAME. Every worker loops until SECONDS have passed,
each time picking one of: an echo transfer of a random size (data both ways at once), an HTTP
download that the server closes first (half the workers bind a fixed source port, so 4-tuples come
back while the server holds them in TIME-WAIT), an abortive close mid-download (SO_LINGER 0: an RST), a
half-close (shut down writing, then read the echo to the end), a connect to a closed port (must be
refused). Over IPv4 and IPv6. Every byte is verified. Prints one summary line and exits 1 on any
failure; connect timeouts are failures.
"""
import hashlib, os, random, socket, struct, sys, threading, time

host4, host6 = sys.argv[1], sys.argv[2]
echo_port, http_port, closed_port = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
seconds, workers = float(sys.argv[6]), int(sys.argv[7])
files = {}
for path in sys.argv[8:]:
    with open(path, 'rb') as f:
        files['/' + os.path.basename(path)] = hashlib.sha256(f.read()).hexdigest()

CONNECT_TIMEOUT = 60
IO_TIMEOUT = 120
lock = threading.Lock()
counts = {}
failures = []


def count(key, n=1):
    with lock:
        counts[key] = counts.get(key, 0) + n


def fail(kind, message):
    with lock:
        failures.append(f'{kind}: {message}')
        counts['failures'] = counts.get('failures', 0) + 1


def connect(host, port, source_port=None):
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    start = time.monotonic()
    for attempt in range(100):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(CONNECT_TIMEOUT)
        try:
            if source_port is not None:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(('::' if family == socket.AF_INET6 else '0.0.0.0', source_port))
            s.connect((host, port))
            break
        except socket.timeout:
            s.close()
            count('connect_timeouts')
            raise
        except OSError as e:
            s.close()
            # The kernel's own previous connection on this fixed port may still be in LAST-ACK (its
            # FIN's ACK lost on the impaired link): the port or 4-tuple is busy on the kernel's side,
            # not ours. Wait for it.
            if e.errno not in (98, 99) or source_port is None or attempt == 99:
                raise
            count('kernel_tuple_busy')
            time.sleep(0.1)
    took = time.monotonic() - start
    count('connect_seconds_x1000', int(took * 1000))
    if took > 2:
        count('slow_connects')
    with lock:
        counts['max_connect_ms'] = max(counts.get('max_connect_ms', 0), int(took * 1000))
    s.settimeout(IO_TIMEOUT)
    return s


def read_all(s):
    data = bytearray()
    while True:
        chunk = s.recv(262144)
        if not chunk:
            return bytes(data)
        data += chunk


def echo(host, rng):
    size = int(2 ** rng.uniform(0, 21))  # 1 byte to 2 MB, log-uniform
    data = os.urandom(size)
    s = connect(host, echo_port)
    sender_error = []

    def send():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except BaseException as e:
            sender_error.append(e)
    sender = threading.Thread(target=send)
    sender.start()
    got = read_all(s)
    sender.join()
    s.close()
    if sender_error:
        raise sender_error[0]
    if got != data:
        raise AssertionError(f'echo of {size} bytes came back as {len(got)} different bytes')
    count('echo_bytes', size)


def http(host, rng, source_port):
    path = rng.choice(sorted(files))
    s = connect(host, http_port, source_port)
    s.sendall(f'GET {path} HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n'.encode())
    data = read_all(s)
    s.close()
    head, _, body = data.partition(b'\r\n\r\n')
    if not head.startswith(b'HTTP/1.1 200') or hashlib.sha256(body).hexdigest() != files[path]:
        raise AssertionError(f'{path}: bad response of {len(body)} bytes: {head[:60]!r}')
    count('http_bytes', len(body))


def abort(host, rng):
    # Mid-download, so the server still has data to send: if our RST is lost (the kernel never
    # sends it again), the server's next segment draws another, and no connection is left behind.
    s = connect(host, http_port)
    s.sendall(b'GET /huge HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n')
    wanted, got = rng.randint(1, 500000), 0
    while got < wanted:
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError(f'the download ended after {got} bytes')
        got += len(chunk)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.close()


def half_close(host, rng):
    data = os.urandom(rng.randint(1, 20000))
    s = connect(host, echo_port)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    time.sleep(rng.uniform(0, 0.1))
    got = read_all(s)
    s.close()
    if got != data:
        raise AssertionError(f'half-close echo of {len(data)} bytes came back as {len(got)} different bytes')


def closed(host, rng):
    try:
        s = connect(host, closed_port)
        s.close()
        raise AssertionError('connected to a closed port')
    except ConnectionRefusedError:
        pass


def worker(index, deadline):
    rng = random.Random(index * 7919 + int(time.time()))
    # Below the kernel's ephemeral range (32768-60999), so no other connection is given it.
    fixed_port = 20000 + index if index % 2 == 0 else None
    kinds = ['echo', 'http', 'abort', 'half_close', 'closed']
    weights = [4, 4, 1, 2, 1]
    while time.monotonic() < deadline:
        kind = rng.choices(kinds, weights)[0]
        host = host6 if rng.random() < 0.3 else host4
        try:
            if kind == 'echo':
                echo(host, rng)
            elif kind == 'http':
                http(host, rng, fixed_port)
            elif kind == 'abort':
                abort(host, rng)
            elif kind == 'half_close':
                half_close(host, rng)
            else:
                closed(host, rng)
            count(kind)
        except socket.timeout as e:
            fail(kind, f'{host}: timeout {e}')
        except BaseException as e:
            fail(kind, f'{host}: {type(e).__name__} {e}')


start = time.monotonic()
deadline = start + seconds
threads = [threading.Thread(target=worker, args=(i, deadline)) for i in range(workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - start
operations = sum(counts.get(k, 0) for k in ['echo', 'http', 'abort', 'half_close', 'closed'])
connects = operations + counts.get('failures', 0)
print('soak clients: ' + ' '.join(
    [f'seconds={elapsed:.0f}', f'workers={workers}', f'operations={operations}']
    + [f'{k}={counts.get(k, 0)}' for k in ['echo', 'http', 'abort', 'half_close', 'closed', 'echo_bytes', 'http_bytes',
                                          'kernel_tuple_busy', 'slow_connects', 'max_connect_ms', 'connect_timeouts',
                                          'failures']]
    + [f'mean_connect_ms={counts.get("connect_seconds_x1000", 0) / max(connects, 1):.1f}']), flush=True)
for line in failures[:20]:
    print('FAILURE ' + line, flush=True)
sys.exit(1 if failures or counts.get('connect_timeouts', 0) else 0)
