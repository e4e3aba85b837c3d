"""One tool call through the Python SDK's real Client, for the approval tests.

Usage: approval_client.py URL MODE TOOL ARGS_JSON   (MODE: legacy = the 2025 session
handshake; or a modern protocol version such as 2026-07-28). Each run is a new process
and session, and so a new JSON-RPC id: what a real agent's retry looks like. Prints
{"text": [...], "isError": bool} as one JSON line.
"""

import asyncio
import json
import sys

from mcp import Client


async def main(url, mode, tool, arguments):
    async with Client(url, mode=mode, read_timeout_seconds=60) as client:
        result = await client.call_tool(tool, arguments)
        texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
        print(json.dumps({"text": texts, "isError": bool(result.is_error)}), flush=True)


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])))
