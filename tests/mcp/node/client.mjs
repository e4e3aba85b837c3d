// A real MCP client (the TypeScript SDK) for gateway-agent's end-to-end tests.
// Usage: node client.mjs URL {streamable|sse}. Prints one JSON object describing what it saw.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, kind] = process.argv.slice(2);
const transport =
  kind === "sse"
    ? new SSEClientTransport(new URL(url))
    : new StreamableHTTPClientTransport(new URL(url));
const client = new Client({ name: "gateway-e2e", version: "1.0.0" });
const texts = (result) => result.content.filter((c) => c.type === "text").map((c) => c.text);

// Every step is bounded: a hung request fails the test instead of hanging it.
const options = { timeout: 20000 };
await client.connect(transport, options);
const out = {};
out.tools = (await client.listTools({}, options)).tools.map((t) => t.name).sort();
out.echo = texts(await client.callTool({ name: "echo", arguments: { message: "hello through the gateway" } }, undefined, options));
out.env = texts(await client.callTool({ name: "get-env", arguments: {} }, undefined, options));
const sum = await client.callTool({ name: "get-sum", arguments: { a: 2, b: 3 } }, undefined, options);
out.sum = { text: texts(sum), structured: sum.structuredContent ?? null };
const denied = await client.callTool({ name: "gzip-file-as-resource", arguments: {} }, undefined, options);
out.denied = { text: texts(denied), isError: denied.isError ?? false };
await client.close();
console.log(JSON.stringify(out));
