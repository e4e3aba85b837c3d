"""A slowloris client: sends an HTTP request to 127.0.0.1:PORT one byte every 100 ms and
reports when the server closed the connection (or that it never did within LIMIT s).

Usage: slow_client.py PORT head|body LIMIT
  head: the request head, never finished;
  body: a whole head declaring a 4096-byte body, then the body a byte at a time.
Prints one JSON line: {"closed": bool, "after": seconds, "status": first response line}.
"""

import json
import socket
import sys
import time

port, mode, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
if mode == "head":
    data = b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\n" + b"x-slow: " + b"a" * 100_000
else:
    data = (
        b"POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"accept: application/json, text/event-stream\r\ncontent-length: 4096\r\n\r\n"
    )
    sock_head, data = data, b"{" + b" " * 4095

sock = socket.create_connection(("127.0.0.1", port), timeout=5)
sock.settimeout(0.1)
started = time.monotonic()
if mode == "body":
    sock.sendall(sock_head)
received = b""
closed = False
for byte in data:
    if time.monotonic() - started > limit:
        break
    try:
        sock.send(bytes([byte]))
    except OSError:
        closed = True
        break
    try:
        chunk = sock.recv(4096)
        if not chunk:
            closed = True
            break
        received += chunk
    except socket.timeout:
        pass
    except OSError:
        closed = True
        break
after = time.monotonic() - started
status = received.split(b"\r\n", 1)[0].decode("latin-1")
print(json.dumps({"closed": closed, "after": round(after, 2), "status": status}), flush=True)
