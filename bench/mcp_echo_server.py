"""A minimal stdio MCP server for bench/mcp_overhead.py: one `echo` tool."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("echo")


@server.tool()
def echo(text: str) -> str:
    """Say `text` back."""
    return text


if __name__ == "__main__":
    server.run()
