// Preloaded (`node --require`) into an HTTP server under test: appends every request's
// method, path and body to the file REQUEST_LOG names, so a test can see exactly what
// a client (or a probe) sent. Body bytes are read where Node's HTTP parser hands them to
// the request stream, so the server's own reading of the body is untouched.
const fs = require("node:fs");
const http = require("node:http");

const log = process.env.REQUEST_LOG;
if (log) {
  const emit = http.Server.prototype.emit;
  http.Server.prototype.emit = function (event, req, ...rest) {
    if (event === "request") fs.appendFileSync(log, `${req.method} ${req.url}\n`);
    return emit.call(this, event, req, ...rest);
  };
  const push = http.IncomingMessage.prototype.push;
  http.IncomingMessage.prototype.push = function (chunk, encoding) {
    if (chunk) fs.appendFileSync(log, `${chunk.toString()}\n`);
    return push.call(this, chunk, encoding);
  };
}
