"""A real MCP client (the Python SDK's Client) for tests/mcp/split_server.py.

Usage: split_client.py URL MODE FLAG (MODE: legacy = the 2025 initialize handshake, or a
modern protocol version). Prints one JSON object: each tool's progress messages, in the
order they arrived, and its result text.
"""

import asyncio
import json
import pathlib
import sys

from mcp import Client


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


async def main(url, mode, flag):
    out = {}
    async with Client(url, mode=mode, read_timeout_seconds=30) as client:
        seen = []

        async def collect(progress, total, message):
            seen.append(message)

        result = await client.call_tool("deploy", {}, progress_callback=collect)
        out["deploy"] = {"progress": seen, "text": texts(result)}

        steps = []

        async def acknowledge(progress, total, message):
            steps.append(message)
            pathlib.Path(flag).touch()

        result = await client.call_tool("wait_for_ack", {"flag": flag}, progress_callback=acknowledge)
        out["wait_for_ack"] = {"progress": steps, "text": texts(result)}
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
