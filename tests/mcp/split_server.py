"""A real MCP server (the Python SDK's MCPServer) whose tools report progress, for the
gateway's stream holdback tests.

`deploy` prints a (fake) GitHub token cut in two progress messages, as a tool that
streams its output line by line can. `wait_for_ack` reports one step, then waits until
the client says it saw that step (by creating FLAG), so a gateway that kept the step back
for ever would never let it finish. Usage: split_server.py PORT
"""

import asyncio
import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer

TOKEN = "ghp_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8"
CUT = 17

server = MCPServer(name="gateway-split-server")


@server.tool()
async def deploy(ctx: Context) -> str:
    """Pushes, printing the token it pushes with across two progress messages."""
    await ctx.report_progress(1, 2, f"pushing with {TOKEN[:CUT]}")
    await ctx.report_progress(2, 2, f"{TOKEN[CUT:]} accepted")
    return "deployed"


@server.tool()
async def wait_for_ack(flag: str, ctx: Context) -> str:
    """Reports one step, then waits (at most 20 s) for FLAG to exist."""
    await ctx.report_progress(1, 1, "step 1 of 1")
    deadline = time.monotonic() + 20
    while not os.path.exists(flag):
        if time.monotonic() > deadline:
            return "the step never reached the client"
        await asyncio.sleep(0.05)
    return "acknowledged"


if __name__ == "__main__":
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
