"""Opens N streaming GETs to one intercepted URL, waits until each has received the
first bytes of its body (MARKER), prints "open", then waits to be killed: the kernel
closes every socket at once, as clients that go away do.

usage: quiet_clients.py PORT N ACCEPT MARKER
"""

import signal
import socket
import sys

port, count, accept, marker = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
marker = marker.encode()
socks = []
for i in range(count):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(
        (
            f"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {accept}\r\n"
            f"Mcp-Session-Id: quiet-{i}\r\n\r\n"
        ).encode()
    )
    socks.append(s)
for s in socks:
    seen = b""
    while marker not in seen:
        chunk = s.recv(4096)
        if not chunk:
            sys.exit(f"stream closed before {marker!r}: {seen!r}")
        seen += chunk
        if len(seen) > 65536:
            sys.exit(f"no {marker!r} in the first 64 KiB: {seen[:200]!r}")
print("open", flush=True)
signal.pause()
