"""An MCP client (the Python SDK's Client) for the pinning tests: lists the tools, then
calls `forecast` and `echo` whether listed or not (a client may call a tool by name).
Usage: pins_client.py URL. Prints {"tools": {name: description}, "forecast": …, "echo": …}.
"""

import asyncio
import json
import sys

from mcp import Client


def outcome(result):
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    return {"isError": result.is_error, "text": texts}


async def main(url):
    out = {}
    async with Client(url, mode="legacy", read_timeout_seconds=20) as client:
        tools = await client.list_tools()
        out["tools"] = {t.name: t.description for t in tools.tools}
        out["forecast"] = outcome(await client.call_tool("forecast", {"city": "Paris"}))
        out["echo"] = outcome(await client.call_tool("echo", {"message": "hi"}))
    print(json.dumps(out))


asyncio.run(main(sys.argv[1]))
