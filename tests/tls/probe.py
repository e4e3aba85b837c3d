"""Low-level TLS clients for the TLS end-to-end tests (stdlib only), run in the test
cgroup so the agent intercepts them. Each prints one JSON object.

  probe.py fingerprint PORT SNI           SHA-256 of the certificate the server presents
  probe.py split PORT SNI CAFILE          a handshake whose ClientHello goes out in 5-byte
                                          segments, then one JSON-RPC POST over it
  probe.py garbage PORT                   a TLS record header followed by garbage
  probe.py stall PORT                     the first bytes of a ClientHello, then silence
  probe.py sequential PORT SNI CAFILE N   N HTTPS connections one after another (no ALPN),
                                          one JSON-RPC POST on each, each closed after

Every socket operation is bounded by a timeout.
"""

import hashlib
import http.client
import json
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"
TIMEOUT = 30


def connect(port):
    sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def wait_closed(sock):
    """Reads until the peer closes; 'eof', 'reset' or 'timeout'."""
    try:
        while sock.recv(4096):
            pass
        return "eof"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "timeout"


def fingerprint(port, sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with connect(port) as sock, ctx.wrap_socket(sock, server_hostname=sni) as tls:
        der = tls.getpeercert(binary_form=True)
    return {"sha256": hashlib.sha256(der).hexdigest()}


def split(port, sni, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    sock = connect(port)
    first = True
    while True:
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        data = outgoing.read()
        if first:
            # The ClientHello, in 5-byte segments (NODELAY + a pause: separate packets).
            for i in range(0, len(data), 5):
                sock.sendall(data[i : i + 5])
                time.sleep(0.002)
            first = False
        elif data:
            sock.sendall(data)
        if done:
            break
        chunk = sock.recv(65536)
        if not chunk:
            return {"error": "closed during handshake"}
        incoming.write(chunk)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}})
    request = (
        f"POST /mcp HTTP/1.1\r\nHost: {sni}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    )
    tls.write(request.encode())
    sock.sendall(outgoing.read())
    response = b""
    while len(response) < 1 << 20:
        try:
            data = tls.read(65536)
            if not data:
                break
            response += data
            continue
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
        chunk = sock.recv(65536)
        if not chunk:
            break
        incoming.write(chunk)
    head, _, payload = response.partition(b"\r\n\r\n")
    return {"status": head.split(b"\r\n")[0].decode(), "body": payload.decode(errors="replace")}


def garbage(port):
    with connect(port) as sock:
        sock.sendall(bytes([0x16, 0x03, 0x01, 0x00, 0x40]) + b"\xab" * 64)
        return {"outcome": wait_closed(sock)}


def stall(port):
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    started = time.monotonic()
    with connect(port) as sock:
        sock.sendall(hello[:10])
        outcome = wait_closed(sock)
    return {"outcome": outcome, "seconds": time.monotonic() - started}


def sequential(port, sni, cafile, count):
    ctx = ssl.create_default_context(cafile=cafile)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}})
    answers = []
    for _ in range(count):
        conn = http.client.HTTPSConnection(HOST, port, timeout=TIMEOUT, context=ctx)
        # Verified against SNI = `sni`, as a client dialling that name would.
        conn.sock = ctx.wrap_socket(connect(port), server_hostname=sni)
        conn.request("POST", "/mcp", body, {"Content-Type": "application/json", "Host": sni})
        response = conn.getresponse()
        answers.append({"status": response.status, "body": response.read().decode(errors="replace")})
        conn.close()
    return {"answers": answers}


mode, args = sys.argv[1], sys.argv[2:]
if mode == "fingerprint":
    out = fingerprint(int(args[0]), args[1])
elif mode == "split":
    out = split(int(args[0]), args[1], args[2])
elif mode == "garbage":
    out = garbage(int(args[0]))
elif mode == "stall":
    out = stall(int(args[0]))
elif mode == "sequential":
    out = sequential(int(args[0]), args[1], args[2], int(args[3]))
else:
    sys.exit(f"unknown mode {mode}")
print(json.dumps(out))
