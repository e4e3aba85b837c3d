// A TLS server for the TLS end-to-end tests that speaks h2 and HTTP/1.1 (ALPN), answers
// every POST with a JSON-RPC result naming the HTTP version it saw and carrying a planted
// secret, and appends one line per request to REQUEST_LOG (method, path, HTTP version and
// the client's port, so a test can tell whether anything reached it, and on which
// connection). Usage: node h2_server.mjs PORT CERT KEY REQUEST_LOG [tls1.0|mtls:CA]
// (`tls1.0`: speak TLS 1.0 only, like a server nobody has upgraded; `mtls:CA`: require a
// client certificate issued by the PEM file CA).
import { appendFileSync, readFileSync } from "node:fs";
import { createSecureServer } from "node:http2";

const [port, cert, key, requestLog, legacy] = process.argv.slice(2);
const SECRET = "ghp_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8";

const server = createSecureServer({
  cert: readFileSync(cert),
  key: readFileSync(key),
  allowHTTP1: true,
  ...(legacy === "tls1.0"
    ? { minVersion: "TLSv1", maxVersion: "TLSv1", ciphers: "DEFAULT@SECLEVEL=0" }
    : {}),
  ...(legacy?.startsWith("mtls:")
    ? { requestCert: true, rejectUnauthorized: true, ca: readFileSync(legacy.slice(5)) }
    : {}),
});
server.on("request", (req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (chunk) => {
    if (body.length < 65536) body += chunk;
  });
  req.on("end", () => {
    appendFileSync(
      requestLog,
      `${req.method} ${req.url} ${req.httpVersion} ${req.socket.remotePort}\n`,
    );
    let id = null;
    try {
      id = JSON.parse(body).id ?? null;
    } catch {}
    const text = `http ${req.httpVersion}; deploy token ${SECRET}`;
    const out = JSON.stringify({
      jsonrpc: "2.0",
      id,
      result: { content: [{ type: "text", text }] },
    });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(out);
  });
});
server.listen(Number(port), "127.0.0.1");
