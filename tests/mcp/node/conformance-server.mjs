// The MCP server gateway-agent's conformance test runs the official suite against: the
// fixture surface of conformance-fixtures.mjs behind the TypeScript SDK's Streamable HTTP
// transport, stateful (one session per initialize) and resumable (an event store, so the
// suite's SSE polling scenario can close a stream mid-call and resume it).
// Usage: node conformance-server.mjs PORT. Serves http://127.0.0.1:PORT/mcp.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { isInitializeRequest } from "@modelcontextprotocol/sdk/types.js";
import { conformanceServer } from "./conformance-fixtures.mjs";

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

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return { tooLarge: true };
    chunks.push(chunk);
  }
  try {
    return { body: JSON.parse(Buffer.concat(chunks).toString("utf8")) };
  } catch {
    return { body: undefined };
  }
}

/** Session id → its transport. */
const sessions = new Map();

async function handle(req, res) {
  if (new URL(req.url ?? "/", "http://localhost").pathname !== "/mcp") {
    return jsonError(res, 404, -32000, "Not found");
  }
  if (!fromLoopback(req)) {
    return jsonError(res, 403, -32000, "Host or Origin is not the loopback host");
  }
  const sessionId = req.headers["mcp-session-id"];
  if (sessionId !== undefined) {
    const transport = sessions.get(sessionId);
    if (!transport) return jsonError(res, 404, -32001, "Session not found");
    return transport.handleRequest(req, res);
  }
  if (req.method !== "POST") {
    return jsonError(res, 400, -32000, "Bad Request: no session; initialize first");
  }
  const { body, tooLarge } = await readJson(req);
  if (tooLarge) return jsonError(res, 413, -32000, "Request body too large");
  if (!isInitializeRequest(body)) {
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
