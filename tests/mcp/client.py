"""A real MCP client (the Python SDK's Client) for the gateway's end-to-end tests.

Usage: client.py URL MODE   (MODE: legacy = 2025 initialize handshake over Streamable
HTTP; sse = the deprecated HTTP+SSE transport; or a modern protocol version such as
2026-07-28). Prints one JSON object describing what it saw.
"""

import asyncio
import json
import sys

import jsonschema
from mcp import Client
from mcp.client.sse import sse_client


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


async def main(url, mode):
    out = {}
    target, mode = (sse_client(url), "legacy") if mode == "sse" else (url, mode)
    async with Client(target, mode=mode, read_timeout_seconds=20) as client:
        tools = await client.list_tools()
        out["tools"] = sorted(t.name for t in tools.tools)
        # The schemas exactly as the client received them (the SDK validated them).
        out["schemas"] = {
            t.name: {"input": t.input_schema, "output": t.output_schema} for t in tools.tools
        }
        created = await client.call_tool(
            "create_user", {"username": "ada", "password": "pw-Zx81-correct", "api_key": "ak-1234-5678-90"}
        )
        # The SDK validates structured results against the tool's outputSchema; do it
        # again with jsonschema directly, so a masked result that breaks it fails here.
        schema = next(t.output_schema for t in tools.tools if t.name == "create_user")
        jsonschema.validate(created.structured_content, schema)
        out["create_user"] = {"structured": created.structured_content, "isError": created.is_error}
        echoed = await client.call_tool("echo", {"message": "plain text, nothing secret"})
        out["echo"] = texts(echoed)
        config = await client.call_tool("get_config", {"service": "billing"})
        out["get_config"] = {
            "text": texts(config),
            "structured": config.structured_content,
            "isError": config.is_error,
        }
        notes = await client.call_tool("read_notes", {})
        out["read_notes"] = texts(notes)
        denied = await client.call_tool("shell_exec", {"command": "id"})
        out["shell_exec"] = {"text": texts(denied), "isError": denied.is_error}
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2]))
