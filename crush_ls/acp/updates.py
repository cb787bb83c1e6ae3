"""crush-ls tool calls, todos and usage as ACP `session/update`s (schema types of `acp`).

Pure translation, shared by the live stream (`stream.py`) and the replay of
`session/load`: a stored tool call and a streamed one give the same title,
kind, locations, raw input and content, so a replay equals what was streamed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from acp import schema

# What a tool call's `content` may hold.
Content = schema.ContentToolCallContent | schema.FileEditToolCallContent | schema.TerminalToolCallContent

# crush-ls tool names -> ACP ToolKind (MCP and unknown tools are "other").
KINDS: dict[str, schema.ToolKind] = {
    "view": "read", "ls": "search", "glob": "search", "grep": "search", "write": "edit", "edit": "edit",
    "multiedit": "edit", "bash": "execute", "fetch": "fetch", "todos": "think",
}
EDIT_TOOLS = frozenset({"write", "edit", "multiedit"})

# crush-ls tool call status (agent/notification `tool_call`) -> ACP ToolCallStatus.
STATUS: dict[str, schema.ToolCallStatus] = {
    "pending": "pending", "awaiting_permission": "pending", "running": "in_progress",
    "completed": "completed", "failed": "failed", "canceled": "failed",
}

# crush-ls finishReason (run_complete) -> ACP StopReason; "unknown" is decided by the caller.
STOP_REASONS: dict[str, schema.StopReason] = {
    "end_turn": "end_turn", "max_tokens": "max_tokens", "canceled": "cancelled", "content_filter": "refusal",
}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def title(name: str, raw: Any) -> str:
    """What a person reads in the editor's tool call header."""
    args = raw if isinstance(raw, dict) else {}
    path = _text(args.get("file_path")) or _text(args.get("path"))
    if name == "view":
        return f"Read {path}"
    if name in EDIT_TOOLS:
        return f"{'Write' if name == 'write' else 'Edit'} {path}"
    if name == "ls":
        return f"List {path or '.'}"
    if name in ("glob", "grep"):
        where = f" in {path}" if path else ""
        return f"{'Find' if name == 'glob' else 'Search'} {_text(args.get('pattern'))}{where}"
    if name == "bash":
        command = _text(args.get("command")).strip().splitlines()
        return command[0][:200] if command else "bash"
    if name == "fetch":
        return f"Fetch {_text(args.get('url'))}"
    if name == "todos":
        return "Update the todo list"
    return name


def locations(name: str, raw: Any, root: Path) -> list[schema.ToolCallLocation] | None:
    """The file (and first line) a call touches, absolute, so the editor can follow the agent."""
    args = raw if isinstance(raw, dict) else {}
    path = _text(args.get("file_path")) or (_text(args.get("path")) if name in ("ls", "glob", "grep") else "")
    if not path:
        return None
    absolute = os.path.normpath(path if os.path.isabs(path) else root / path)
    line = None
    if name == "view" and isinstance(args.get("offset"), int) and args["offset"] >= 0:
        line = args["offset"] + 1
    return [schema.ToolCallLocation(path=absolute, line=line)]


def diffs(name: str, raw: Any, root: Path) -> list[Content] | None:
    """An edit as ACP diff content, from the call's input (as claude-agent-acp does).

    `write` replaces the whole file (`oldText` unknown without a read: null, a
    new file to the editor); `edit`/`multiedit` show each replaced string.
    """
    if name not in EDIT_TOOLS or not isinstance(raw, dict):
        return None
    where = locations(name, raw, root)
    if where is None:
        return None
    path = where[0].path
    if name == "write":
        return [schema.FileEditToolCallContent(type="diff", path=path, old_text=None,
                                               new_text=_text(raw.get("content")))]
    edits = [raw] if name == "edit" else [e for e in raw.get("edits") or [] if isinstance(e, dict)]
    return [
        schema.FileEditToolCallContent(type="diff", path=path, old_text=_text(e.get("old_string")) or None,
                                       new_text=_text(e.get("new_string")))
        for e in edits
    ] or None


def text_content(text: str) -> list[Content]:
    return [schema.ContentToolCallContent(type="content", content=schema.TextContentBlock(type="text", text=text))]


def result_content(name: str, raw: Any, root: Path, result: str, is_error: bool) -> list[Content] | None:
    """The content a finished call shows: an edit's diff, else the tool's output as text (bash's too)."""
    if not is_error:
        edit = diffs(name, raw, root)
        if edit is not None:
            return edit
    return text_content(result) if result else None


def tool_call_start(call_id: str, name: str, raw: Any, status: str, root: Path,
                    content: list[Content] | None = None) -> schema.ToolCallStart:
    return schema.ToolCallStart(
        session_update="tool_call", tool_call_id=call_id, title=title(name, raw), kind=KINDS.get(name, "other"),
        status=STATUS.get(status, "pending"), locations=locations(name, raw, root), raw_input=raw,
        content=content if content is not None else diffs(name, raw, root),
    )


def tool_call_update(call_id: str, *, status: str | None = None, content: list[Content] | None = None,
                     raw_output: Any = None) -> schema.ToolCallProgress:
    return schema.ToolCallProgress(
        session_update="tool_call_update", tool_call_id=call_id,
        status=STATUS.get(status) if status is not None else None, content=content, raw_output=raw_output,
    )


def permission_call(call_id: str, name: str, raw: Any, root: Path) -> schema.ToolCallUpdate:
    """The tool call a `session/request_permission` is about (with its diff, so edits can be reviewed)."""
    return schema.ToolCallUpdate(
        tool_call_id=call_id, title=title(name, raw), kind=KINDS.get(name, "other"), status="pending",
        locations=locations(name, raw, root), raw_input=raw, content=diffs(name, raw, root),
    )


def plan(todos: Any) -> schema.AgentPlanUpdate | None:
    """The `todos` tool's list as an ACP plan (the whole list each time, as ACP wants)."""
    if not isinstance(todos, list):
        return None
    entries = [
        schema.PlanEntry(content=_text(t.get("content")), priority="medium", status=t["status"])
        for t in todos
        if isinstance(t, dict) and t.get("status") in ("pending", "in_progress", "completed")
    ]
    return schema.AgentPlanUpdate(session_update="plan", entries=entries)


def usage(session: dict[str, Any], context_window: int) -> schema.UsageUpdate:
    """Tokens in the context now (Crush keeps the latest prompt + completion), window and total cost."""
    used = int(session.get("promptTokens") or 0) + int(session.get("completionTokens") or 0)
    return schema.UsageUpdate(
        session_update="usage_update", used=used, size=max(context_window, used),
        cost=schema.Cost(amount=float(session.get("cost") or 0.0), currency="USD"),
    )


CHUNK_KINDS = {"user": "user_message_chunk", "agent": "agent_message_chunk", "thought": "agent_thought_chunk"}


def chunk_wire(kind: str, text: str, message_id: str | None = None) -> dict[str, Any]:
    """`message_chunk(...)` already dumped: the hot path of streaming (a delta every few ms per session)
    skips building and dumping a pydantic model; tests/acp pin it to the schema type's dump."""
    update: dict[str, Any] = {"content": {"text": text, "type": "text"}, "sessionUpdate": CHUNK_KINDS[kind]}
    if message_id is not None:
        update["messageId"] = message_id
    return update


def message_chunk(kind: str, text: str, message_id: str | None = None) -> Any:
    """A text piece: `user`, `agent` (text) or `thought` (reasoning)."""
    block = schema.TextContentBlock(type="text", text=text)
    if kind == "user":
        return schema.UserMessageChunk(session_update="user_message_chunk", content=block, message_id=message_id)
    if kind == "thought":
        return schema.AgentThoughtChunk(session_update="agent_thought_chunk", content=block, message_id=message_id)
    return schema.AgentMessageChunk(session_update="agent_message_chunk", content=block, message_id=message_id)
