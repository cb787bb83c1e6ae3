"""A streamable-HTTP MCP server on 127.0.0.1 (a free port, printed on stdout).

Tools: `echo`, `slow` (sleeps `seconds`: a server that hangs; `cancelled` says whether the client
cancelled it), `boom` (raises:
an isError result), `picture` (an image and a resource), `big` (a long text).
`/broken` answers every request with HTTP 500: a server that fails.
With the argument `sse`, the same tools are served over SSE at `/sse` instead.
"""

import asyncio
import socket
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import EmbeddedResource, ImageContent, TextContent, TextResourceContents
from starlette.responses import PlainTextResponse
from starlette.routing import Route

server = MCPServer("web")


@server.tool()
def echo(text: str) -> str:
    """Say `text` back."""
    return text


CANCELLED: set[str] = set()  # the tags of `slow` calls the client cancelled


@server.tool()
async def slow(seconds: float, tag: str = "") -> str:
    """Answer after `seconds`."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:  # the client's notifications/cancelled
        CANCELLED.add(tag)
        raise
    return "finally"


@server.tool()
def cancelled(tag: str) -> str:
    """Whether the `slow` call tagged `tag` was cancelled: yes or no."""
    return "yes" if tag in CANCELLED else "no"


@server.tool()
def boom() -> str:
    """Fail."""
    raise ToolError("the boom tool always fails")


@server.tool()
def picture() -> list:
    """A one-pixel PNG and a text resource."""
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    return [
        TextContent(text="a picture:"),
        ImageContent(data=png, mime_type="image/png"),
        EmbeddedResource(resource=TextResourceContents(uri="file:///notes.txt", mime_type="text/plain",
                                                       text="resource text")),
    ]


@server.tool()
def big(lines: int) -> str:
    """`lines` numbered lines."""
    return "\n".join(f"line {i:06d} " + "x" * 40 for i in range(lines))


async def broken(request):
    return PlainTextResponse("internal trouble", status_code=500)


def main() -> None:
    app = server.sse_app() if sys.argv[1:] == ["sse"] else server.streamable_http_app()
    app.router.routes.append(Route("/broken", broken, methods=["GET", "POST", "DELETE"]))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
