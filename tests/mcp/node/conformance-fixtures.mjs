// What the official MCP conformance suite (@modelcontextprotocol/conformance) expects a
// server to offer: its fixture tools, resources, prompts, completion and logging. Served to
// 2025-era clients here, on the TypeScript SDK 1.x low-level Server (the suite's
// json-schema-2020-12 scenario needs a raw JSON Schema in tools/list, which the high-level
// McpServer would rewrite); conformance-modern.mjs serves the same data on 2026-07-28.
// Names, texts and shapes follow each scenario's description in the suite's dist/index.js.
import { deflateSync, crc32 } from "node:zlib";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";

/** A 1x1 red PNG, built here so its bytes are plainly valid (signature, IHDR, IDAT, IEND). */
function redPixelPng() {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1, 0); // width
  ihdr.writeUInt32BE(1, 4); // height
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  const scanline = Buffer.from([0, 255, 0, 0]); // filter byte, then one red pixel
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(scanline)),
    chunk("IEND", Buffer.alloc(0)),
  ]).toString("base64");
}

/** 10 ms of 8 kHz 8-bit mono silence as a RIFF/WAVE file. */
function silentWav() {
  const samples = Buffer.alloc(80, 128);
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(36 + samples.length, 4);
  header.write("WAVEfmt ", 8, "ascii");
  header.writeUInt32LE(16, 16); // fmt chunk size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(8000, 24); // sample rate
  header.writeUInt32LE(8000, 28); // byte rate
  header.writeUInt16LE(1, 32); // block align
  header.writeUInt16LE(8, 34); // bits per sample
  header.write("data", 36, "ascii");
  header.writeUInt32LE(samples.length, 40);
  return Buffer.concat([header, samples]).toString("base64");
}

export const PNG = redPixelPng();
export const WAV = silentWav();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (t) => ({ content: [{ type: "text", text: t }] });
const NO_ARGS = { type: "object", properties: {} };
const stringArg = (name, description) => ({
  type: "object",
  properties: { [name]: { type: "string", description } },
  required: [name],
});

/** The tools, each with its JSON Schema and its behaviour `(args, extra, server)`. */
export const TOOLS = {
  test_simple_text: {
    description: "Returns simple text content",
    inputSchema: NO_ARGS,
    run: async () => text("This is a simple text response for testing."),
  },
  test_image_content: {
    description: "Returns image content",
    inputSchema: NO_ARGS,
    run: async () => ({ content: [{ type: "image", data: PNG, mimeType: "image/png" }] }),
  },
  test_audio_content: {
    description: "Returns audio content",
    inputSchema: NO_ARGS,
    run: async () => ({ content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }] }),
  },
  test_embedded_resource: {
    description: "Returns an embedded resource",
    inputSchema: NO_ARGS,
    run: async () => ({
      content: [
        {
          type: "resource",
          resource: {
            uri: "test://embedded-resource",
            mimeType: "text/plain",
            text: "This is an embedded resource content.",
          },
        },
      ],
    }),
  },
  test_multiple_content_types: {
    description: "Returns text, image and resource content together",
    inputSchema: NO_ARGS,
    run: async () => ({
      content: [
        { type: "text", text: "Multiple content types test:" },
        { type: "image", data: PNG, mimeType: "image/png" },
        {
          type: "resource",
          resource: {
            uri: "test://mixed-content-resource",
            mimeType: "application/json",
            text: JSON.stringify({ test: "data", value: 123 }),
          },
        },
      ],
    }),
  },
  test_tool_with_logging: {
    description: "Sends three log messages while it runs",
    inputSchema: NO_ARGS,
    run: async (_args, extra, server) => {
      const log = (data) =>
        server.isMessageIgnored("info", extra.sessionId)
          ? undefined
          : extra.sendNotification({ method: "notifications/message", params: { level: "info", data } });
      await log("Tool execution started");
      await sleep(50);
      await log("Tool processing data");
      await sleep(50);
      await log("Tool execution completed");
      return text("Logging test completed");
    },
  },
  test_error_handling: {
    description: "Always fails",
    inputSchema: NO_ARGS,
    run: async () => ({ ...text("This tool intentionally returns an error for testing"), isError: true }),
  },
  test_tool_with_progress: {
    description: "Reports progress 0, 50 and 100 of 100",
    inputSchema: NO_ARGS,
    run: async (_args, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (const progress of [0, 50, 100]) {
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: "notifications/progress",
            params: { progressToken, progress, total: 100 },
          });
        }
        if (progress < 100) await sleep(50);
      }
      return text("Progress test completed");
    },
  },
  test_sampling: {
    description: "Asks the client's LLM to answer a prompt",
    inputSchema: stringArg("prompt", "The prompt to send to the LLM"),
    run: async (args, extra, server) => {
      if (!server.getClientCapabilities()?.sampling) {
        return { ...text("The client does not support sampling"), isError: true };
      }
      const reply = await extra.sendRequest(
        {
          method: "sampling/createMessage",
          params: {
            messages: [{ role: "user", content: { type: "text", text: String(args.prompt ?? "") } }],
            maxTokens: 100,
          },
        },
        CreateMessageResultSchema,
      );
      const answer = reply.content?.type === "text" ? reply.content.text : JSON.stringify(reply.content);
      return text(`LLM response: ${answer}`);
    },
  },
  test_elicitation: {
    description: "Asks the user for a username and an email address",
    inputSchema: stringArg("message", "The message to show the user"),
    run: async (args, extra, server) =>
      elicit(server, extra, "User response", {
        message: String(args.message ?? ""),
        requestedSchema: {
          type: "object",
          properties: {
            username: { type: "string", description: "User's response" },
            email: { type: "string", description: "User's email address" },
          },
          required: ["username", "email"],
        },
      }),
  },
  test_elicitation_sep1034_defaults: {
    description: "Elicits every primitive type with a default value (SEP-1034)",
    inputSchema: NO_ARGS,
    run: async (_args, extra, server) =>
      elicit(server, extra, "Elicitation completed", {
        message: "Please review and update the form fields with defaults",
        requestedSchema: {
          type: "object",
          properties: {
            name: { type: "string", description: "User name", default: "John Doe" },
            age: { type: "integer", description: "User age", default: 30 },
            score: { type: "number", description: "User score", default: 95.5 },
            status: {
              type: "string",
              description: "User status",
              enum: ["active", "inactive", "pending"],
              default: "active",
            },
            verified: { type: "boolean", description: "Verification status", default: true },
          },
        },
      }),
  },
  test_elicitation_sep1330_enums: {
    description: "Elicits the five enum schema variants (SEP-1330)",
    inputSchema: NO_ARGS,
    run: async (_args, extra, server) =>
      elicit(server, extra, "Elicitation completed", {
        message: "Please choose options",
        requestedSchema: {
          type: "object",
          properties: {
            untitledSingle: { type: "string", enum: ["option1", "option2", "option3"] },
            titledSingle: {
              type: "string",
              oneOf: [
                { const: "value1", title: "First Option" },
                { const: "value2", title: "Second Option" },
                { const: "value3", title: "Third Option" },
              ],
            },
            legacyEnum: {
              type: "string",
              enum: ["opt1", "opt2", "opt3"],
              enumNames: ["Option One", "Option Two", "Option Three"],
            },
            untitledMulti: { type: "array", items: { type: "string", enum: ["option1", "option2", "option3"] } },
            titledMulti: {
              type: "array",
              items: {
                anyOf: [
                  { const: "value1", title: "First Choice" },
                  { const: "value2", title: "Second Choice" },
                  { const: "value3", title: "Third Choice" },
                ],
              },
            },
          },
        },
      }),
  },
  json_schema_2020_12_tool: {
    description: "Tool with JSON Schema 2020-12 features",
    // SEP-1613's keywords, and SEP-2106's broader vocabulary ($anchor, allOf/anyOf,
    // if/then/else) that the 2026-07-28 suite also looks for.
    inputSchema: {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      $defs: {
        address: {
          $anchor: "addressDef",
          type: "object",
          properties: { street: { type: "string" }, city: { type: "string" } },
        },
      },
      properties: {
        name: { type: "string" },
        address: { $ref: "#/$defs/address" },
        contactMethod: { type: "string", enum: ["phone", "email"] },
        phone: { type: "string" },
        email: { type: "string" },
      },
      allOf: [{ anyOf: [{ required: ["phone"] }, { required: ["email"] }] }],
      if: { properties: { contactMethod: { const: "phone" } }, required: ["contactMethod"] },
      then: { required: ["phone"] },
      else: { required: ["email"] },
      additionalProperties: false,
    },
    run: async (args) => text(`Received: ${JSON.stringify(args)}`),
  },
  test_reconnection: {
    description: "Closes its SSE stream mid-call, then answers on the resumed stream (SEP-1699)",
    inputSchema: NO_ARGS,
    run: async (_args, extra) => {
      // The SDK offers closeSSEStream only when resumability is on and the client speaks
      // 2025-11-25 or later; otherwise the call simply completes on its stream.
      extra.closeSSEStream?.();
      await sleep(100);
      return text("Reconnection test completed");
    },
  },
};

async function elicit(server, extra, label, params) {
  if (!server.getClientCapabilities()?.elicitation) {
    return { ...text("The client does not support elicitation"), isError: true };
  }
  const reply = await extra.sendRequest({ method: "elicitation/create", params }, ElicitResultSchema);
  return text(`${label}: action=${reply.action}, content=${JSON.stringify(reply.content ?? {})}`);
}

export const STATIC_RESOURCES = {
  "test://static-text": {
    name: "static-text",
    description: "A static text resource",
    mimeType: "text/plain",
    text: "This is the content of the static text resource.",
  },
  "test://static-binary": {
    name: "static-binary",
    description: "A static binary resource (a PNG image)",
    mimeType: "image/png",
    blob: PNG,
  },
  "test://watched-resource": {
    name: "watched-resource",
    description: "A resource clients may subscribe to",
    mimeType: "text/plain",
    text: "Watched resource content.",
  },
};
const TEMPLATE = /^test:\/\/template\/([^/]+)\/data$/;

export function readResource(uri) {
  const found = STATIC_RESOURCES[uri];
  if (found) {
    const { mimeType, text: body, blob } = found;
    return { contents: [blob ? { uri, mimeType, blob } : { uri, mimeType, text: body }] };
  }
  const id = TEMPLATE.exec(uri)?.[1];
  if (id !== undefined) {
    const data = { id, templateTest: true, data: `Data for ID: ${id}` };
    return { contents: [{ uri, mimeType: "application/json", text: JSON.stringify(data) }] };
  }
  throw new McpError(ErrorCode.InvalidParams, `Resource not found: ${uri}`);
}

export const PROMPTS = {
  test_simple_prompt: {
    description: "A prompt without arguments",
    arguments: [],
    messages: () => [{ role: "user", content: { type: "text", text: "This is a simple prompt for testing." } }],
  },
  test_prompt_with_arguments: {
    description: "A prompt with two required arguments",
    arguments: [
      { name: "arg1", description: "First test argument", required: true },
      { name: "arg2", description: "Second test argument", required: true },
    ],
    messages: (a) => [
      {
        role: "user",
        content: { type: "text", text: `Prompt with arguments: arg1='${a.arg1}', arg2='${a.arg2}'` },
      },
    ],
  },
  test_prompt_with_embedded_resource: {
    description: "A prompt embedding a resource",
    arguments: [{ name: "resourceUri", description: "URI of the resource to embed", required: true }],
    messages: (a) => [
      {
        role: "user",
        content: {
          type: "resource",
          resource: { uri: a.resourceUri, mimeType: "text/plain", text: "Embedded resource content for testing." },
        },
      },
      { role: "user", content: { type: "text", text: "Please process the embedded resource above." } },
    ],
  },
  test_prompt_with_image: {
    description: "A prompt with an image",
    arguments: [],
    messages: () => [
      { role: "user", content: { type: "image", data: PNG, mimeType: "image/png" } },
      { role: "user", content: { type: "text", text: "Please analyze the image above." } },
    ],
  },
};

/** Completion candidates per argument name; the suite only checks the response shape. */
export const COMPLETIONS = { arg1: ["paris", "park", "party"], arg2: ["world", "word"], id: ["123", "456"] };

/** One MCP server (one per session): the whole fixture surface on the SDK's Server. */
export function conformanceServer() {
  const server = new Server(
    { name: "gateway-conformance-fixture", version: "1.0.0" },
    {
      capabilities: {
        tools: {},
        resources: { subscribe: true },
        prompts: {},
        logging: {},
        completions: {},
      },
    },
  );
  const subscriptions = new Set();

  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: Object.entries(TOOLS).map(([name, { description, inputSchema }]) => ({ name, description, inputSchema })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const tool = Object.hasOwn(TOOLS, request.params.name) ? TOOLS[request.params.name] : undefined;
    if (!tool) throw new McpError(ErrorCode.InvalidParams, `Unknown tool: ${request.params.name}`);
    return tool.run(request.params.arguments ?? {}, extra, server);
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({
    resources: Object.entries(STATIC_RESOURCES).map(([uri, { name, description, mimeType }]) => ({
      uri,
      name,
      description,
      mimeType,
    })),
  }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: [
      {
        uriTemplate: "test://template/{id}/data",
        name: "template-data",
        description: "Data for an id",
        mimeType: "application/json",
      },
    ],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, async (request) => readResource(request.params.uri));
  server.setRequestHandler(SubscribeRequestSchema, async (request) => {
    subscriptions.add(request.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (request) => {
    subscriptions.delete(request.params.uri);
    return {};
  });

  server.setRequestHandler(ListPromptsRequestSchema, async () => ({
    prompts: Object.entries(PROMPTS).map(([name, p]) => ({ name, description: p.description, arguments: p.arguments })),
  }));
  server.setRequestHandler(GetPromptRequestSchema, async (request) => {
    const prompt = Object.hasOwn(PROMPTS, request.params.name) ? PROMPTS[request.params.name] : undefined;
    if (!prompt) throw new McpError(ErrorCode.InvalidParams, `Unknown prompt: ${request.params.name}`);
    const args = request.params.arguments ?? {};
    const missing = prompt.arguments.filter((a) => a.required && typeof args[a.name] !== "string");
    if (missing.length > 0) {
      throw new McpError(ErrorCode.InvalidParams, `Missing arguments: ${missing.map((a) => a.name).join(", ")}`);
    }
    return { description: prompt.description, messages: prompt.messages(args) };
  });

  server.setRequestHandler(CompleteRequestSchema, async (request) => {
    const { name, value } = request.params.argument;
    const candidates = Object.hasOwn(COMPLETIONS, name) ? COMPLETIONS[name] : [];
    const values = candidates.filter((c) => c.startsWith(value));
    return { completion: { values, total: values.length, hasMore: false } };
  });

  return server;
}
