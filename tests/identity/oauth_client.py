"""A real MCP client that authenticates the way MCP authorization specifies: the Python
SDK's ClientCredentialsOAuthProvider meets the gateway's 401, follows its
`resource_metadata` (RFC 9728) to the authorization server, gets a token with
client_credentials for this resource (RFC 8707) and retries — nothing gateway-specific.

Usage: oauth_client.py URL ISSUER CLIENT_ID CLIENT_SECRET SCOPE MODE
Prints one JSON object with what it saw.
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client


class MemoryStorage:
    def __init__(self):
        self.tokens = None
        self.client_info = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, client_info):
        self.client_info = client_info


async def main(url, issuer, client_id, client_secret, scope, mode):
    auth = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=MemoryStorage(),
        client_id=client_id,
        client_secret=client_secret,
        scope=scope,
        issuer=issuer,
    )
    out = {}
    async with httpx2.AsyncClient(auth=auth, timeout=20) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, read_timeout_seconds=20) as client:
            tools = await client.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            echoed = await client.call_tool("echo", {"message": "hello through OAuth"})
            out["echo"] = [c.text for c in echoed.content if c.type == "text"]
    print(json.dumps(out))


asyncio.run(main(*sys.argv[1:7]))
