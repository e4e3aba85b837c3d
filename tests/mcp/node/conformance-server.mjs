// The MCP server gateway-agent's conformance test runs the official suite against, on one
// endpoint for both protocol generations, as a real deployment would serve them:
// - 2025-era traffic (initialize handshake, sessions): the fixture surface of
//   conformance-fixtures.mjs behind the TypeScript SDK 1.x Streamable HTTP transport,
//   stateful and resumable (an event store, so the suite's SSE polling scenario can close a
//   stream mid-call and resume it);
// - 2026-07-28 traffic (per-request `_meta` envelope): conformance-modern.mjs on the SDK v2.
// Requests are told apart with the v2 SDK's own classifier, `isLegacyRequest`.
// Usage: node conformance-server.mjs PORT. Serves http://127.0.0.1:PORT/mcp.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { isLegacyRequest } from "@modelcontextprotocol/server";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { conformanceServer } from "./conformance-fixtures.mjs";
import { modernHandler } from "./conformance-modern.mjs";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error("usage: node conformance-server.mjs PORT");
  process.exit(2);
}

/** Bounds: a test fixture still must not grow without limit. */
const MAX_SESSIONS = 256;
const MAX_BODY_BYTES = 1 << 20;
const MAX_EVENTS = 4096;
/** Milliseconds a client waits before resuming a stream the server closed (SSE `retry:`). */
const RETRY_MS = 200;

/**
 * The SDK's EventStore interface, in memory: events in arrival order, the oldest dropped
 * past MAX_EVENTS. Event ids are `<streamId>:<sequence>`, so a resume finds its stream.
 */
class BoundedEventStore {
  #events = [];
  #next = 0;

  async storeEvent(streamId, message) {
    const eventId = `${streamId}:${this.#next++}`;
    this.#events.push({ eventId, streamId, message });
    if (this.#events.length > MAX_EVENTS) this.#events.shift();
    return eventId;
  }

  async getStreamIdForEventId(eventId) {
    return this.#events.find((e) => e.eventId === eventId)?.streamId;
  }

  async replayEventsAfter(lastEventId, { send }) {
    const at = this.#events.findIndex((e) => e.eventId === lastEventId);
    if (at < 0) return "";
    const { streamId } = this.#events[at];
    for (const event of this.#events.slice(at + 1)) {
      if (event.streamId === streamId) await send(event.eventId, event.message);
    }
    return streamId;
  }
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * DNS rebinding protection (the suite's dns-rebinding-protection scenario): a local
 * server without authentication answers only requests whose Host, and Origin when
 * present, name the loopback host.
 */
function fromLoopback(req) {
  const hostOf = (value) => {
    try {
      return new URL(value).hostname;
    } catch {
      return undefined;
    }
  };
  if (!LOCAL_HOSTS.has(hostOf(`http://${req.headers.host ?? ""}`))) return false;
  const origin = req.headers.origin;
  return origin === undefined || LOCAL_HOSTS.has(hostOf(origin));
}

function jsonError(res, status, code, message) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }));
}

/** The request body, bounded, as bytes and (when it is JSON) parsed. */
async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return { tooLarge: true };
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks);
  try {
    return { raw, body: JSON.parse(raw.toString("utf8")) };
  } catch {
    return { raw, body: undefined };
  }
}

/** The Node request as a fetch `Request` (what the v2 SDK speaks), with the body already read. */
function webRequest(req, raw) {
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const hasBody = raw !== undefined && req.method !== "GET" && req.method !== "HEAD";
  return new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
    method: req.method,
    headers,
    body: hasBody ? raw : undefined,
  });
}

/** Streams a fetch `Response` out through Node, chunk by chunk as the SDK produces it. */
async function sendWeb(res, response) {
  const headers = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  res.writeHead(response.status, headers);
  if (!response.body) return res.end();
  const reader = response.body.getReader();
  res.on("close", () => reader.cancel().catch(() => {}));
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    res.write(value);
  }
  res.end();
}

const modern = modernHandler();

/** Session id → its transport. */
const sessions = new Map();

async function handle(req, res) {
  if (new URL(req.url ?? "/", "http://localhost").pathname !== "/mcp") {
    return jsonError(res, 404, -32000, "Not found");
  }
  if (!fromLoopback(req)) {
    return jsonError(res, 403, -32000, "Host or Origin is not the loopback host");
  }
  let body;
  let raw;
  if (req.method === "POST") {
    const read = await readBody(req);
    if (read.tooLarge) return jsonError(res, 413, -32000, "Request body too large");
    ({ body, raw } = read);
  }
  const request = webRequest(req, raw);
  if (!(await isLegacyRequest(request, body))) {
    return sendWeb(res, await modern.fetch(request, { parsedBody: body }));
  }
  return legacy(req, res, body);
}

/** 2025-era serving: one SDK 1.x transport and server per session. */
async function legacy(req, res, body) {
  const sessionId = req.headers["mcp-session-id"];
  if (sessionId !== undefined) {
    const transport = sessions.get(sessionId);
    if (!transport) return jsonError(res, 404, -32001, "Session not found");
    return transport.handleRequest(req, res, body);
  }
  if (req.method !== "POST" || !isInitializeRequest(body)) {
    return jsonError(res, 400, -32000, "Bad Request: no session; initialize first");
  }
  if (sessions.size >= MAX_SESSIONS) {
    return jsonError(res, 503, -32000, "Too many sessions");
  }
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    eventStore: new BoundedEventStore(),
    retryInterval: RETRY_MS,
    onsessioninitialized: (id) => sessions.set(id, transport),
  });
  transport.onclose = () => {
    if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
  };
  await conformanceServer().connect(transport);
  return transport.handleRequest(req, res, body);
}

createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error("conformance server:", error);
    if (!res.headersSent) jsonError(res, 500, -32603, "Internal error");
    else res.end();
  });
}).listen(port, "127.0.0.1", () => console.error(`conformance fixture on http://127.0.0.1:${port}/mcp`));
