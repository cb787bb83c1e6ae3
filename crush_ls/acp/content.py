"""What ACP clients send, made into what the backend takes.

`prompt_input`: ACP content blocks -> the prompt text and crush-ls attachments
(embedded resources become attachments, the way files attached in an editor
do; resource links are mentioned in the text, for the tools to open).
`tolerant_setup`: the `mcpServers` of `session/new|load|resume` cleaned up
before the SDK validates them, because clients send odd values (CodeCompanion
sends `{}` for an empty list, `env` as a map, missing `args`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from acp import schema

SETUP_METHODS = frozenset({"session/new", "session/load", "session/resume"})


def _file_path(uri: str, root: Path) -> str | None:
    """A file: URI as a path relative to the workspace when inside it."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        return None
    path = Path(unquote(parsed.path))
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def prompt_input(blocks: list[Any], root: Path) -> tuple[str, list[dict[str, Any]]]:
    """(prompt text, attachments in agent/sendMessage wire form)."""
    texts: list[str] = []
    attachments: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, schema.TextContentBlock):
            texts.append(block.text)
        elif isinstance(block, schema.ResourceContentBlock):
            path = _file_path(block.uri, root)
            texts.append(f"@{path}" if path else f"[{block.name}]({block.uri})")
        elif isinstance(block, schema.EmbeddedResourceContentBlock):
            resource = block.resource
            attachment: dict[str, Any] = {"uri": resource.uri}
            if path := _file_path(resource.uri, root):
                attachment["path"] = path
            if resource.mime_type:
                attachment["mimeType"] = resource.mime_type
            if isinstance(resource, schema.TextResourceContents):
                attachment["text"] = resource.text
            else:
                attachment["content"] = resource.blob
            attachments.append(attachment)
        elif isinstance(block, schema.ImageContentBlock):
            image = {"mimeType": block.mime_type, "content": block.data}
            attachments.append({**image, "uri": block.uri} if block.uri else image)
    return "\n".join(texts), attachments


def _pairs(value: Any) -> list[dict[str, str]]:
    """`[{name, value}]` from such a list or from a map; anything else is no entries."""
    if isinstance(value, dict):
        return [{"name": str(k), "value": str(v)} for k, v in value.items()]
    if not isinstance(value, list):
        return []
    return [{"name": str(p["name"]), "value": str(p.get("value", ""))}
            for p in value if isinstance(p, dict) and p.get("name")]


def _server(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        return None
    if isinstance(raw.get("url"), str) and raw["url"]:
        kind = raw.get("type") if raw.get("type") in ("http", "sse") else "http"
        return {**raw, "type": kind, "headers": _pairs(raw.get("headers"))}
    if not isinstance(raw.get("command"), str) or not raw["command"]:
        return None
    args = raw.get("args")
    return {**raw, "args": [str(a) for a in args] if isinstance(args, list) else [], "env": _pairs(raw.get("env"))}


def tolerant_setup(message: dict[str, Any]) -> dict[str, Any]:
    """Clean a session setup request's `mcpServers` in place (unusable entries are left out)."""
    params = message.get("params")
    if message.get("method") in SETUP_METHODS and isinstance(params, dict):
        servers = params.get("mcpServers")
        cleaned = [_server(s) for s in servers] if isinstance(servers, list) else []
        params["mcpServers"] = [s for s in cleaned if s is not None]
    return message


def server_config(server: Any) -> dict[str, Any]:
    """A validated MCP server (schema type) as a plain dict for the session (env/headers as maps)."""
    data: dict[str, Any] = server.model_dump(mode="json", by_alias=True, exclude_none=True)
    for key in ("env", "headers"):
        if isinstance(data.get(key), list):
            data[key] = {p["name"]: p["value"] for p in data[key]}
    if "url" in data:
        data.setdefault("type", "http")
    return data
