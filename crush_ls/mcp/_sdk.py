"""Every import of the MCP SDK, in one module that `manager.load_sdk` imports in a thread.

The SDK (pydantic, httpx2, starlette) takes most of a second to import: it is
imported off the event loop when the first server connects, so neither
`initialize` nor a prompt waits for it.
"""

from __future__ import annotations

import logging

import httpx2
import mcp
import mcp.client.stdio as stdio
import mcp_types as types
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

# The SDK waits 2 s for a server to exit after its stdin closes, then 2 s after
# SIGTERM before SIGKILL: up to 4 s per server. crush-ls must be gone within 2 s of
# the end of its input, so servers get 0.4 s for each step (these are read when a
# server stops, not at import). A server that exits on end of input, as servers
# do, is not affected.
stdio.PROCESS_TERMINATION_TIMEOUT = 0.4
stdio.FORCE_KILL_TIMEOUT = 0.4
logging.getLogger("httpx2").setLevel(logging.WARNING)  # it logs every request of an http server at INFO

Client = mcp.Client
__all__ = ["Client", "MCPError", "StdioServerParameters", "httpx2", "sse_client", "stdio_client",
           "streamable_http_client", "types"]
