"""tests/mcp/server.py's MCP server (Streamable HTTP, stateful, JSON responses) with every
request logged: one line per request, its method and path, then its body, appended to
LOG_FILE, so a test can see exactly what a client (or a probe) sent.
Usage: logged_server.py PORT LOG_FILE
"""

import os
import sys

import uvicorn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server import server  # noqa: E402

port, log_file = int(sys.argv[1]), sys.argv[2]
app = server.streamable_http_app(stateless_http=False, json_response=True, host="127.0.0.1")


def logged(inner):
    async def asgi(scope, receive, send):
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        with open(log_file, "a", encoding="utf-8") as log:
            log.write(f"{scope['method']} {scope['path']}\n")

        async def tee():
            message = await receive()
            if message.get("type") == "http.request" and message.get("body"):
                with open(log_file, "a", encoding="utf-8") as log:
                    log.write(message["body"].decode("utf-8", "replace") + "\n")
            return message

        return await inner(scope, tee, send)

    return asgi


uvicorn.run(logged(app), host="127.0.0.1", port=port, log_level="warning")
