"""A real MCP server (the Python SDK's MCPServer) for the gateway's end-to-end tests.

Its tools return planted, obviously fake secrets, so a test can see whether they reach
the caller. Usage: server.py PORT {stateful|stateless|legacy-sse} {sse|json} [CERT KEY]
(legacy-sse serves the deprecated HTTP+SSE transport at /sse; CERT and KEY, PEM files,
make the Streamable HTTP server speak HTTPS).
"""

import sys
from typing import Any

from pydantic import BaseModel

from mcp.server.mcpserver import MCPServer

# Fake credentials in well-known formats (AWS's own documentation example key, etc.).
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
DB_PASSWORD = "hunter2-correct-horse-battery"

server = MCPServer(name="gateway-e2e-server")


@server.tool()
def echo(message: str) -> str:
    """Returns its argument unchanged."""
    return message


@server.tool(structured_output=True)
def get_config(service: str) -> dict[str, Any]:
    """Returns a service's configuration, credentials included (structured)."""
    return {
        "service": service,
        "database": {"host": "db.internal", "user": "app", "password": DB_PASSWORD},
        "aws_access_key_id": AWS_KEY_ID,
        "note": f"deploy with token {GITHUB_TOKEN}",
    }


class Credentials(BaseModel):
    secret: str
    rotation_days: int


class Account(BaseModel):
    """What create_user returns: sensitive field names of every JSON type, so its
    outputSchema has `password`, `api_key`… as property names."""

    username: str
    password: str
    api_key: str
    credentials: Credentials
    session: int
    tokens: list[str]


@server.tool(structured_output=True)
def create_user(username: str, password: str, api_key: str) -> Account:
    """A tool whose input and output schemas name secrets (create_user(password))."""
    return Account(
        username=username,
        password=password,
        api_key=api_key,
        credentials=Credentials(secret=DB_PASSWORD, rotation_days=30),
        session=42,
        tokens=[GITHUB_TOKEN, AWS_KEY_ID],
    )


@server.tool()
def read_notes() -> str:
    """Free text with a secret in the middle of a sentence."""
    return f"The CI uses {GITHUB_TOKEN} and the AWS key {AWS_KEY_ID} for uploads."


@server.tool()
def shell_exec(command: str) -> str:
    """A tool the default test policy denies."""
    return f"would run: {command}"


if __name__ == "__main__":
    port, state, response = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    if state == "legacy-sse":
        server.run("sse", host="127.0.0.1", port=port)
        sys.exit(0)
    if len(sys.argv) > 5:
        import uvicorn

        app = server.streamable_http_app(
            stateless_http=(state == "stateless"),
            json_response=(response == "json"),
            host="127.0.0.1",
        )
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ssl_certfile=sys.argv[4],
            ssl_keyfile=sys.argv[5],
        )
        sys.exit(0)
    server.run(
        "streamable-http",
        host="127.0.0.1",
        port=port,
        stateless_http=(state == "stateless"),
        json_response=(response == "json"),
    )
