"""An MCP server (the Python SDK's MCPServer) whose `forecast` tool's description is read
from a file at start: restarting it with another file is a server changing a tool after
users trusted it (a "rug pull"). Usage: pins_server.py PORT DESCRIPTION_FILE
"""

import sys

from mcp.server.mcpserver import MCPServer

port, description_file = int(sys.argv[1]), sys.argv[2]
with open(description_file, encoding="utf-8") as f:
    description = f.read()

server = MCPServer(name="gateway-e2e-pins")


@server.tool(description=description)
def forecast(city: str) -> str:
    return f"sunny in {city}"


@server.tool()
def echo(message: str) -> str:
    """Returns its argument unchanged."""
    return message


server.run("streamable-http", host="127.0.0.1", port=port, stateless_http=False, json_response=True)
