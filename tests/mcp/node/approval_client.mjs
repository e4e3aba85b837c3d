// One tool call through the TypeScript SDK's real Client, for the approval tests.
// Usage: node approval_client.mjs URL TOOL ARGS_JSON. The SDK's default request timeout
// (60 s) applies, as for any application. Prints {"text": [...], "isError": bool}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, tool, args] = process.argv.slice(2);
const client = new Client({ name: "gateway-e2e-approval", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
const result = await client.callTool({ name: tool, arguments: JSON.parse(args) });
const text = result.content.filter((c) => c.type === "text").map((c) => c.text);
console.log(JSON.stringify({ text, isError: result.isError ?? false }));
await client.close();
