import Foundation

/// The kernel-side programs of the interop tests, in Python 3 (standard library only).
enum KernelPeers {
    /// FNV-1a 64 of the data, as `tcpip serve --discard` reports it.
    static let fnv = """
        def fnv1a64(data):
            h = 0xcbf29ce484222325
            for b in data:
                h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
            return format(h, 'x')
        """

    /// `sendall`s N random bytes to HOST:PORT, shuts down, waits for the server's close, prints the digest.
    static let slowReaderClient = """
        import os, socket, sys
        \(fnv)
        host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        data = os.urandom(size)
        print('fnv1a64=' + fnv1a64(data), flush=True)
        s = socket.create_connection((host, port), timeout=120)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b''
        s.close()
        print('sent', size, flush=True)
        """

    /// Uploads N bytes (a random 1 MiB block, repeated) to HOST:PORT as fast as the kernel's TCP goes,
    /// prints their digest, and the rate from connect to the server's close (after every byte).
    static let timedUpload = """
        import os, socket, sys, time
        \(fnv)
        host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        block = os.urandom(1 << 20)
        data = (block * (size // len(block) + 1))[:size]
        print('fnv1a64=' + fnv1a64(data), flush=True)
        start = time.monotonic()
        s = socket.create_connection((host, port), timeout=120)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b''
        elapsed = time.monotonic() - start
        s.close()
        print('uploaded %d bytes in %.3f s: mbit=%.1f' % (size, elapsed, size * 8 / elapsed / 1e6), flush=True)
        """

    /// Sends N random bytes to an echo server while reading the echo; checks they are the same.
    static let echoClient = """
        import os, socket, sys, threading
        host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        data = os.urandom(size)
        s = socket.create_connection((host, port), timeout=120)
        def send():
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        sender = threading.Thread(target=send)
        sender.start()
        got = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        sender.join()
        if bytes(got) != data:
            sys.exit(f'echo differs: got {len(got)} bytes of {size}')
        print('echo verified', size, flush=True)
        """

    /// N short connections in parallel batches, each a small echo; then a connect to a closed port.
    static let shortConnections = """
        import socket, sys
        from concurrent.futures import ThreadPoolExecutor
        host, port, count, batch, closed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        def one(i):
            message = f'hello {i}\\n'.encode() * 4
            with socket.create_connection((host, port), timeout=30) as s:
                s.sendall(message)
                s.shutdown(socket.SHUT_WR)
                got = b''
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            return got == message
        ok = 0
        with ThreadPoolExecutor(max_workers=batch) as pool:
            for start in range(0, count, batch):
                ok += sum(pool.map(one, range(start, min(start + batch, count))))
        print(f'short connections ok={ok} of {count}', flush=True)
        try:
            socket.create_connection((host, closed), timeout=10)
            print('closed port: connected?!', flush=True)
        except ConnectionRefusedError:
            print('closed port: refused', flush=True)
        except Exception as e:
            print(f'closed port: {type(e).__name__} {e}', flush=True)
        """

    /// Streams to a sink for N seconds, recording the bytes handed to the kernel each second; then
    /// shuts down and waits for the sink to close.
    static let timedStream = """
        import socket, sys, time
        host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        s = socket.create_connection((host, port), timeout=30)
        s.setblocking(True)
        chunk = b'x' * 131072
        start = time.monotonic()
        per_second = [0] * int(seconds)
        while True:
            now = time.monotonic() - start
            if now >= seconds:
                break
            per_second[int(now)] += s.send(chunk)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b''
        total = sum(per_second)
        print(f'streamed total={total} slowest_second={min(per_second)} seconds={time.monotonic() - start:.2f}', flush=True)
        """

    /// Fetches PATH from HOST:PORT twice from the same local port (40000), `Connection: close`, so
    /// the server closes first and holds the 4-tuple in TIME-WAIT; waits GAP seconds between. Each
    /// body is checked against its SHA-256; prints how long each connect took.
    static let sameSourcePortTwice = """
        import hashlib, socket, sys, time
        host, port, path, digest, gap = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        def fetch(n):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('::' if family == socket.AF_INET6 else '0.0.0.0', 40000))
            s.settimeout(30)
            start = time.monotonic()
            s.connect((host, port))
            took = time.monotonic() - start
            s.sendall(f'GET {path} HTTP/1.1\\r\\nHost: tcpip\\r\\nConnection: close\\r\\n\\r\\n'.encode())
            data = bytearray()
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            head, _, body = bytes(data).partition(b'\\r\\n\\r\\n')
            if not head.startswith(b'HTTP/1.1 200') or hashlib.sha256(body).hexdigest() != digest:
                sys.exit(f'fetch {n}: bad response ({len(body)} bytes): {head[:80]!r}')
            print(f'fetch {n} ok connect_seconds={took:.3f}', flush=True)
        fetch(1)
        time.sleep(gap)
        fetch(2)
        """
}
