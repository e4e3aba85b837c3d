"""An MCP client (the Python SDK's Client) for the secret-handle tests: reads a secret
(gets a handle), passes the handle to another tool of the same server in the same
session, then tries it in a new session and on another server.
Usage: handles_client.py URL OTHER_URL. Prints one JSON object.
"""

import asyncio
import json
import re
import sys

from mcp import Client

HANDLE = re.compile(r"\[SECRET:h_[0-9a-f]{32}\]")


def texts(result):
    return " ".join(c.text for c in result.content if getattr(c, "type", None) == "text")


async def echo(client, message):
    try:
        result = await client.call_tool("echo", {"message": message})
        return {"isError": result.is_error, "text": texts(result)}
    except Exception as err:  # the gateway's refusal arrives as a JSON-RPC error
        return {"isError": True, "text": str(err)}


async def main(url, other):
    out = {}
    async with Client(url, mode="legacy", read_timeout_seconds=20) as client:
        notes = texts(await client.call_tool("read_notes", {}))
        out["notes"] = notes
        handles = HANDLE.findall(notes)
        out["handle"] = handles[0] if handles else None
        if out["handle"]:
            out["same_session"] = await echo(client, f"deploy with {out['handle']}")
    if out["handle"]:
        async with Client(url, mode="legacy", read_timeout_seconds=20) as client:
            out["new_session"] = await echo(client, f"deploy with {out['handle']}")
        async with Client(other, mode="legacy", read_timeout_seconds=20) as client:
            out["other_server"] = await echo(client, f"deploy with {out['handle']}")
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2]))
