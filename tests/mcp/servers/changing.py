"""A stdio MCP server whose `grow` tool adds a tool and announces notifications/tools/list_changed."""

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("changing")


def extra(text: str) -> str:
    """A tool that appears when `grow` is called."""
    return f"extra: {text}"


@server.tool()
async def grow(ctx: Context) -> str:
    """Add the tool `extra`."""
    server.add_tool(extra)
    await ctx.session.send_tool_list_changed()
    return "grown"


if __name__ == "__main__":
    server.run()
