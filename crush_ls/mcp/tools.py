"""An MCP server's tool as one of the agent's tools: `mcp_<server>_<tool>`.

A call needs a decision like `bash` (action `execute`): it is allowed by
`permissions.allowedTools` naming the tool, `mcp_<server>_*`, or the
`mcp__<server>__<tool>` spelling of Codex and Claude Code, or by the mode.
The result keeps the text for the model (cut in the middle past 50 KB, as
bash output is), images and resources as parts, and structured content in
the metadata; `isError` is a failed call, and so is a timeout.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..permissions import Access
from ..tools.base import Tool, ToolContext, ToolResult
from ..tools.paths import ToolInputError

if TYPE_CHECKING:
    from .manager import Server

MAX_RESULT = 50_000  # characters of result text the model gets
MAX_DESCRIBED_ARGS = 300  # characters of the arguments in a permission request's description
EMPTY_SCHEMA = {"type": "object", "properties": {}}


def cut_middle(text: str, limit: int = MAX_RESULT) -> str:
    """`text`, or its first and last limit/2 characters around a note of what was cut (as bash does)."""
    if len(text) <= limit:
        return text
    half = limit // 2
    head, tail = text[:half], text[-half:]
    cut_lines = text.count("\n") - head.count("\n") - tail.count("\n")
    return f"{head}\n\n... [{cut_lines} lines truncated] ...\n\n{tail}"


class McpTool(Tool):
    action = "execute"
    asks_inside = True

    def __init__(self, server: Server, tool: str, description: str | None, schema: dict[str, Any] | None) -> None:
        self.server = server
        self.tool = tool
        self.name = server.config.tool_name(tool)  # per instance: one class for every MCP tool
        self.description = description or f"{tool} (MCP server {server.name})"
        # the server's own schema: there is no attrs input class
        self.parameters = schema if isinstance(schema, dict) and schema else EMPTY_SCHEMA

    def parse(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise ToolInputError(f"{self.name}: input must be a JSON object")
        return raw  # the server checks its own schema

    def aliases(self) -> tuple[str, ...]:
        server = self.server.name
        return (f"mcp_{server}_*", f"mcp__{server}__{self.tool}", f"mcp__{server}__*", f"mcp__{server}")

    def access(self, ctx: ToolContext, args: dict[str, Any]) -> Access:
        return Access(action=self.action, path=None, inside=True, asks_inside=True,
                      description=self.describe(ctx, args), aliases=self.aliases())

    def describe(self, ctx: ToolContext, args: dict[str, Any]) -> str:
        shown = json.dumps(args, ensure_ascii=False)
        if len(shown) > MAX_DESCRIBED_ARGS:
            shown = shown[:MAX_DESCRIBED_ARGS] + "…"
        return f"MCP server {self.server.name}: call {self.tool} with {shown}"

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        from .manager import Unavailable, load_sdk

        sdk = await load_sdk()
        try:
            result = await self.server.call(self.tool, args)
        except Unavailable as exc:
            return ToolResult(str(exc), is_error=True)
        except sdk.MCPError as exc:
            return ToolResult(self._failure(sdk, exc), is_error=True)
        return to_tool_result(self.server.name, self.tool, result.model_dump(mode="json", by_alias=True))

    def _failure(self, sdk: Any, exc: Any) -> str:
        where = f"MCP tool {self.tool} of server {self.server.name}"
        if exc.code == sdk.types.REQUEST_TIMEOUT:
            return f"{where} did not answer within {self.server.config.timeout:g}s; the call was cancelled."
        if exc.code == sdk.types.CONNECTION_CLOSED:
            return f"{where}: the server closed the connection during the call (it exited?)."
        return f"{where} failed: {exc.message}"


def to_tool_result(server: str, tool: str, result: dict[str, Any]) -> ToolResult:
    """A CallToolResult (in wire form) as the agent's tool result."""
    texts: list[str] = []
    parts: list[dict[str, Any]] = []
    for block in result.get("content") or []:
        text, part = _block(block)
        if text:
            texts.append(text)
        if part is not None:
            parts.append(part)
    structured = result.get("structuredContent")
    content = "\n".join(texts)
    if not content and structured is not None:
        content = json.dumps(structured, ensure_ascii=False)
    metadata: dict[str, Any] = {"server": server, "tool": tool}
    if structured is not None:
        metadata["structuredContent"] = structured
    return ToolResult(cut_middle(content) or "(no output)", is_error=bool(result.get("isError")),
                      metadata=metadata, parts=parts or None)


def _block(block: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """One content block: (text for the model, part kept with the result)."""
    kind = block.get("type")
    if kind == "text":
        return block.get("text") or "", None
    if kind in ("image", "audio"):
        mime = block.get("mimeType") or "application/octet-stream"
        return f"[{kind} {mime}]", {"type": "binary", "mimeType": mime, "data": block.get("data") or ""}
    if kind == "resource":
        resource = block.get("resource") or {}
        uri, mime = resource.get("uri"), resource.get("mimeType")
        if "text" in resource:
            return resource["text"], {"type": "resource", "uri": uri, "mimeType": mime, "text": resource["text"]}
        part = {"type": "binary", "uri": uri, "mimeType": mime or "application/octet-stream",
                "data": resource.get("blob") or ""}
        return f"[resource {uri} ({mime or 'binary'})]", part
    if kind == "resource_link":
        uri = block.get("uri")
        return f"[resource {uri}]", {"type": "resource_link", "uri": uri, "name": block.get("name"),
                                     "mimeType": block.get("mimeType")}
    return "", None
