"""MCP client support: the workspace's MCP servers and their tools (docs/mcp.md).

Nothing here imports the MCP SDK until a workspace has a server to connect.
"""

from __future__ import annotations

from .config import ServerConfig, server_configs
from .manager import McpManager

__all__ = ["McpManager", "ServerConfig", "server_configs"]
