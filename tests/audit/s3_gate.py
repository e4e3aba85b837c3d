"""A fault gate in front of the loopback S3 server, for tests/audit_ship_faults.rs.

Usage: s3_gate.py LISTEN_PORT UPSTREAM_PORT MODE_FILE

Each request reads MODE_FILE (one word) and then:
  pass   forwards the request unchanged (Host included, so signatures still verify)
  503    answers 503 with S3's SlowDown error document (a 5xx storm)
  stall  answers nothing until the mode changes (a slow endpoint; bounded at 60 s)
  skew   answers 403 RequestTimeTooSkewed, as S3 does when the signer's clock is more than
         15 minutes off its own (the loopback server does not check request times)
The error documents follow the shapes in Amazon S3's error response reference. A HEAD
gets the status alone, as from S3.
"""

import http.client
import sys
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

listen_port, upstream_port, mode_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade"}


def mode():
    try:
        with open(mode_file) as f:
            return f.read().strip() or "pass"
    except OSError:
        return "pass"


class Gate(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def error(self, status, code, message, extra=""):
        body = b""
        if self.command != "HEAD":
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}"
                "<RequestId>gate</RequestId></Error>"
            ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        current = mode()
        if current == "stall":
            deadline = time.monotonic() + 60
            while mode() == "stall" and time.monotonic() < deadline:
                time.sleep(0.05)
            self.close_connection = True
            return
        if current == "503":
            return self.error(503, "SlowDown", "Please reduce your request rate.")
        if current == "skew":
            now = datetime.now(timezone.utc)
            fmt = "%Y-%m-%dT%H:%M:%SZ"
            return self.error(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
                f"<RequestTime>{(now - timedelta(hours=1)).strftime(fmt)}</RequestTime>"
                f"<ServerTime>{now.strftime(fmt)}</ServerTime>"
                "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>",
            )
        upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in HOP:
                upstream.putheader(name, value)
        upstream.endheaders(body if body else None)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in HOP and name.lower() != "content-length":
                self.send_header(name, value)
        length = response.getheader("Content-Length")
        self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = handle_any


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", listen_port), Gate).serve_forever()
