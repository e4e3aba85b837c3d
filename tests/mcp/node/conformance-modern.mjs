// The fixture surface for the 2026-07-28 protocol revision (stateless, per-request `_meta`
// envelope, server/discover, subscriptions/listen, input-required results), built on the
// TypeScript SDK v2 (`@modelcontextprotocol/server`), the SDK line that implements that
// revision. The tools, resources and prompts are those of conformance-fixtures.mjs; the
// 2026-only tools live here.
import { randomBytes } from "node:crypto";
import {
  CLIENT_CAPABILITIES_META_KEY,
  McpServer,
  ResourceTemplate,
  createMcpHandler,
  createRequestStateCodec,
  fromJsonSchema,
  inputRequired,
  inputResponse,
} from "@modelcontextprotocol/server";
import { COMPLETIONS, PROMPTS, STATIC_RESOURCES, TOOLS, readResource } from "./conformance-fixtures.mjs";

/** The 2025-era tool behaviours that mean the same on 2026-07-28 (no server-to-client requests). */
const SHARED_TOOLS = [
  "test_simple_text",
  "test_image_content",
  "test_audio_content",
  "test_embedded_resource",
  "test_multiple_content_types",
  "test_error_handling",
  "test_tool_with_progress",
  "json_schema_2020_12_tool",
];

/** What a 2025-era tool body reads from its `extra`, taken from a v2 request context. */
function legacyExtra(ctx) {
  return {
    _meta: ctx.mcpReq._meta,
    sendNotification: (notification) => ctx.mcpReq.notify(notification),
  };
}

/** Seals multi-round `requestState` (HMAC), so a tampered echo is refused with -32602. */
const stateCodec = createRequestStateCodec({ key: randomBytes(32) });

const text = (t) => ({ content: [{ type: "text", text: t }] });
const noArgs = fromJsonSchema({ type: "object", properties: {} });
/** Registers a tool without arguments whose body needs only the request context. */
const noArgTool = (server, name, description, run) =>
  server.registerTool(name, { description, inputSchema: noArgs }, async (_args, ctx) => run(ctx));
const askName = (message) =>
  inputRequired.elicit({
    message,
    requestedSchema: { type: "object", properties: { name: { type: "string" } }, required: ["name"] },
  });
const askGreeting = () =>
  inputRequired.createMessage({
    messages: [{ role: "user", content: { type: "text", text: "Generate a greeting" } }],
    maxTokens: 50,
  });

/** The client capabilities a 2026-07-28 request declared in its `_meta` envelope. */
function clientCapabilities(ctx) {
  return ctx.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY] ?? {};
}

/**
 * What the client supplied for one input request: the accepted elicitation content, the
 * sampling result's content or the roots; undefined when missing, declined or cancelled.
 */
function answered(responses, key) {
  const view = inputResponse(responses, key);
  if (view.kind === "elicit") return view.action === "accept" ? view.content : undefined;
  if (view.kind === "sampling") return view.result.content;
  if (view.kind === "roots") return view.roots;
  return undefined;
}

/**
 * The multi-round-trip (input-required) tools of the 2026-07-28 suite, each answering
 * once the client has supplied every input it asked for (and re-asking otherwise).
 */
function registerInputRequiredTools(server) {
  noArgTool(server, "test_input_required_result_elicitation", "Asks the user's name first", async (ctx) => {
    const name = answered(ctx.mcpReq.inputResponses, "user_name")?.name;
    if (typeof name !== "string") return inputRequired({ inputRequests: { user_name: askName("What is your name?") } });
    return text(`Hello, ${name}!`);
  });
  noArgTool(server, "test_input_required_result_sampling", "Asks the client's LLM first", async (ctx) => {
    const content = answered(ctx.mcpReq.inputResponses, "capital_question");
    if (content === undefined) {
      return inputRequired({
        inputRequests: {
          capital_question: inputRequired.createMessage({
            messages: [{ role: "user", content: { type: "text", text: "What is the capital of France?" } }],
            maxTokens: 100,
          }),
        },
      });
    }
    return text(`LLM response: ${content?.text ?? JSON.stringify(content)}`);
  });
  noArgTool(server, "test_input_required_result_list_roots", "Asks for the client's roots first", async (ctx) => {
    const roots = answered(ctx.mcpReq.inputResponses, "client_roots");
    if (!Array.isArray(roots)) return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
    return text(`Roots: ${roots.map((r) => r.uri).join(", ")}`);
  });
  noArgTool(server, "test_input_required_result_request_state", "Round-trips sealed state", async (ctx) => {
    const state = ctx.mcpReq.requestState();
    const confirmed = answered(ctx.mcpReq.inputResponses, "confirm");
    if (state?.round !== 1 || confirmed === undefined) {
      return inputRequired({
        inputRequests: {
          confirm: inputRequired.elicit({
            message: "Please confirm",
            requestedSchema: { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] },
          }),
        },
        requestState: await stateCodec.mint({ round: 1 }),
      });
    }
    return text(`state-ok: confirmed=${JSON.stringify(confirmed)}`);
  });
  noArgTool(server, "test_input_required_result_multiple_inputs", "Asks for three inputs at once", async (ctx) => {
    const responses = ctx.mcpReq.inputResponses;
    const keys = ["user_name", "greeting", "client_roots"];
    if (ctx.mcpReq.requestState()?.round !== 1 || keys.some((k) => answered(responses, k) === undefined)) {
      return inputRequired({
        inputRequests: {
          user_name: askName("What is your name?"),
          greeting: askGreeting(),
          client_roots: inputRequired.listRoots(),
        },
        requestState: await stateCodec.mint({ round: 1 }),
      });
    }
    return text(`All inputs received: ${keys.join(", ")}`);
  });
  noArgTool(server, "test_input_required_result_multi_round", "Asks twice, in two rounds", async (ctx) => {
    const responses = ctx.mcpReq.inputResponses;
    const round = ctx.mcpReq.requestState()?.round ?? 0;
    const name = answered(responses, "step1")?.name;
    const color = answered(responses, "step2")?.color;
    if (round === 2 && typeof color === "string") return text(`Multi-round complete: color=${color}`);
    if (round >= 1 && (typeof name === "string" || round === 2)) {
      return inputRequired({
        inputRequests: {
          step2: inputRequired.elicit({
            message: "Step 2: What is your favorite color?",
            requestedSchema: { type: "object", properties: { color: { type: "string" } }, required: ["color"] },
          }),
        },
        requestState: await stateCodec.mint({ round: 2 }),
      });
    }
    return inputRequired({
      inputRequests: { step1: askName("Step 1: What is your name?") },
      requestState: await stateCodec.mint({ round: 1 }),
    });
  });
  noArgTool(server, "test_input_required_result_tampered_state", "Refuses state it did not seal", async (ctx) => {
    if (ctx.mcpReq.requestState()?.round === 1) return text("state verified");
    return inputRequired({
      inputRequests: { user_name: askName("What is your name?") },
      requestState: await stateCodec.mint({ round: 1 }),
    });
  });
  noArgTool(server, "test_input_required_result_capabilities", "Asks only what the client can answer", async (ctx) => {
    const caps = clientCapabilities(ctx);
    const responses = ctx.mcpReq.inputResponses;
    const wanted = {};
    const missing = (key) => answered(responses, key) === undefined;
    if (caps.elicitation && missing("user_name")) wanted.user_name = askName("What is your name?");
    if (caps.sampling && missing("greeting")) wanted.greeting = askGreeting();
    if (caps.roots && missing("client_roots")) wanted.client_roots = inputRequired.listRoots();
    if (Object.keys(wanted).length > 0) return inputRequired({ inputRequests: wanted });
    return text("Capabilities respected");
  });
  const promptConfig = { description: "A prompt that asks for context first" };
  server.registerPrompt("test_input_required_result_prompt", promptConfig, async (ctx) => {
    const context = answered(ctx.mcpReq.inputResponses, "user_context")?.context;
    if (typeof context !== "string") {
      return inputRequired({
        inputRequests: {
          user_context: inputRequired.elicit({
            message: "What context should the prompt use?",
            requestedSchema: { type: "object", properties: { context: { type: "string" } }, required: ["context"] },
          }),
        },
      });
    }
    return { messages: [{ role: "user", content: { type: "text", text: `Prompt with context: ${context}` } }] };
  });
}

/**
 * The server/stateless scenario's diagnostic tools: one needing a client capability the
 * request may not declare, one whose stream may carry only its input-required result, one logging
 * (which must stay silent without `_meta` logLevel), and hooks changing the lists.
 */
function registerDiagnosticTools(server, notify) {
  // Asks the client's LLM; the SDK itself answers -32021 (MissingRequiredClientCapability)
  // when the request's client capabilities do not declare sampling.
  noArgTool(server, "test_missing_capability", "Needs the client's sampling capability", async (ctx) => {
    const content = answered(ctx.mcpReq.inputResponses, "sample");
    if (content !== undefined) return text(`LLM response: ${content?.text ?? JSON.stringify(content)}`);
    return inputRequired({
      inputRequests: {
        sample: inputRequired.createMessage({
          messages: [{ role: "user", content: { type: "text", text: "Say hello" } }],
          maxTokens: 20,
        }),
      },
    });
  });
  noArgTool(server, "test_streaming_elicitation", "Asks the user, answering only with that request", async (ctx) => {
    const name = answered(ctx.mcpReq.inputResponses, "user_name")?.name;
    if (typeof name === "string") return text(`Hello, ${name}!`);
    return inputRequired({ inputRequests: { user_name: askName("What is your name?") } });
  });
  noArgTool(server, "test_logging_tool", "Logs three messages", async (ctx) => {
    for (const message of ["Tool execution started", "Tool processing data", "Tool execution completed"]) {
      await ctx.mcpReq.log("info", message);
    }
    return text("Logging test completed");
  });
  // SEP-2243: a parameter the client must mirror into an `Mcp-Param-Region` header,
  // which the SDK checks against the body.
  server.registerTool(
    "test_custom_headers",
    {
      description: "Takes a region the client also sends as a header",
      inputSchema: fromJsonSchema({
        type: "object",
        properties: { region: { type: "string", "x-mcp-header": "Region" } },
        required: ["region"],
      }),
    },
    async ({ region }) => text(`region=${region}`),
  );
  noArgTool(server, "test_trigger_tool_change", "Announces a changed tool list", async () => {
    notify.toolsChanged();
    return text("tool list changed");
  });
  noArgTool(server, "test_trigger_prompt_change", "Announces a changed prompt list", async () => {
    notify.promptsChanged();
    return text("prompt list changed");
  });
}

function modernServer(notify) {
  const server = new McpServer(
    { name: "gateway-conformance-fixture", version: "1.0.0" },
    {
      requestState: { verify: stateCodec.verify },
      capabilities: {
        tools: { listChanged: true },
        resources: { listChanged: true },
        prompts: { listChanged: true },
        logging: {},
        completions: {},
      },
    },
  );
  for (const name of SHARED_TOOLS) {
    const tool = TOOLS[name];
    server.registerTool(
      name,
      { description: tool.description, inputSchema: fromJsonSchema(tool.inputSchema) },
      async (args, ctx) => tool.run(args ?? {}, legacyExtra(ctx)),
    );
  }
  for (const [uri, { name, description, mimeType }] of Object.entries(STATIC_RESOURCES)) {
    server.registerResource(name, uri, { description, mimeType }, async () => readResource(uri));
  }
  server.registerResource(
    "template-data",
    new ResourceTemplate("test://template/{id}/data", {
      list: undefined,
      complete: { id: (value) => COMPLETIONS.id.filter((c) => c.startsWith(value)) },
    }),
    { description: "Data for an id", mimeType: "application/json" },
    async (uri) => readResource(uri.href),
  );
  for (const [name, prompt] of Object.entries(PROMPTS)) {
    const properties = Object.fromEntries(
      prompt.arguments.map((a) => [a.name, { type: "string", description: a.description }]),
    );
    const required = prompt.arguments.filter((a) => a.required).map((a) => a.name);
    const config = { description: prompt.description };
    if (prompt.arguments.length > 0) {
      config.argsSchema = fromJsonSchema({ type: "object", properties, required });
    }
    server.registerPrompt(name, config, async (args) => ({
      description: prompt.description,
      messages: prompt.messages(args ?? {}),
    }));
  }
  registerInputRequiredTools(server);
  registerDiagnosticTools(server, notify);
  return server;
}

/** The v2 SDK's fetch-shaped handler for modern requests (2025-era ones are routed elsewhere). */
export function modernHandler() {
  const handler = createMcpHandler(() => modernServer(handler.notify), { legacy: "reject" });
  return handler;
}
