"""Steady MCP load for the audit crash test: the Python SDK's real client calls the echo
tool N times in sequence and prints `received m-I` the moment each answer arrives, so the
test knows exactly which responses a client received before the agent was killed.

Usage: load.py URL N
"""

import asyncio
import sys

from mcp import Client


async def main(url, count):
    async with Client(url, mode="2026-07-28", read_timeout_seconds=20) as client:
        for i in range(count):
            result = await client.call_tool("echo", {"message": f"m-{i}"})
            text = result.content[0].text
            if text != f"m-{i}":
                raise SystemExit(f"unexpected answer {text!r} for m-{i}")
            print(f"received m-{i}", flush=True)


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
