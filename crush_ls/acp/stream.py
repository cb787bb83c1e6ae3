"""One ACP session's view of the backend's `agent/notification`s.

`SessionStream.translate` turns one notification body of the session into the
`session/update`s it means (none for most); `session/load` feeds the stored
history through the same translation (`replay_bodies`), so a replay shows what
the live stream showed. A finished tool call's status is held until its
result arrives, so the editor gets the status and the output in one update.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acp import schema

from . import updates


class SessionStream:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: dict[str, tuple[str, Any]] = {}  # toolCallId -> (tool name, input)
        self._status: dict[str, str] = {}  # the last status sent per call
        self._held: dict[str, str] = {}  # a final status waiting for the call's result
        self.title: str | None = None
        self._usage: tuple[int, int, float] | None = None

    def translate(self, body: dict[str, Any], context_window: int) -> list[Any]:
        kind = body.get("type")
        if kind == "text_delta":
            return [updates.chunk_wire("agent", body["text"], body.get("messageId"))]
        if kind == "reasoning_delta":
            return [updates.chunk_wire("thought", body["text"], body.get("messageId"))]
        if kind == "tool_call":
            return self._tool_call(body["toolCall"])
        if kind == "tool_result":
            return self._tool_result(body)
        if kind == "session_updated":
            return list(self._session(body["session"], context_window))
        if kind == "run_complete":
            return self.release_held()
        return []

    def _tool_call(self, call: dict[str, Any]) -> list[Any]:
        call_id, status = call["id"], call["status"]
        if call_id not in self.calls:
            self.calls[call_id] = (call["name"], call.get("input"))
            self._status[call_id] = status
            return [updates.tool_call_start(call_id, call["name"], call.get("input"), status, self.root)]
        if status in ("completed", "failed", "canceled"):
            self._held[call_id] = status
            return []
        if updates.STATUS.get(status) == updates.STATUS.get(self._status[call_id]):
            return []  # awaiting_permission after pending: nothing new for the editor
        self._status[call_id] = status
        return [updates.tool_call_update(call_id, status=status)]

    def _tool_result(self, body: dict[str, Any]) -> list[Any]:
        call_id = body["toolCallId"]
        name, raw = self.calls.get(call_id, (body.get("name", ""), None))
        is_error = bool(body.get("isError"))
        status = self._held.pop(call_id, "failed" if is_error else "completed")
        self._status[call_id] = status
        content = updates.result_content(name, raw, self.root, str(body.get("content") or ""), is_error)
        out: list[Any] = [updates.tool_call_update(call_id, status=status, content=content)]
        todos = (body.get("metadata") or {}).get("todos")
        if name == "todos" and not is_error and (plan := updates.plan(todos)) is not None:
            out.append(plan)
        return out

    def release_held(self) -> list[Any]:
        """Final statuses whose result never came (the run ended first)."""
        held, self._held = self._held, {}
        return [updates.tool_call_update(call_id, status=status) for call_id, status in held.items()]

    def _session(self, session: dict[str, Any], context_window: int) -> Iterator[Any]:
        title = session.get("title")
        if title and title != self.title:
            self.title = title
            yield schema.SessionInfoUpdate(session_update="session_info_update", title=title,
                                                   updated_at=session.get("updatedAt"))
        used = (int(session.get("promptTokens") or 0), int(session.get("completionTokens") or 0),
                float(session.get("cost") or 0.0))
        if used != self._usage and any(used):
            self._usage = used
            yield updates.usage(session, context_window)


def replay_bodies(messages: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Stored messages (wire form) as ("user", text) pieces and notification bodies, in order."""
    for message in messages:
        role = message["role"]
        for part in message["parts"]:
            kind = part.get("type")
            if role == "user" and kind == "text" and part.get("text"):
                yield "user", {"text": part["text"], "messageId": message["id"]}
            elif role == "assistant" and kind in ("text", "reasoning") and part.get("text"):
                delta = "text_delta" if kind == "text" else "reasoning_delta"
                yield "body", {"type": delta, "text": part["text"], "messageId": message["id"]}
            elif role == "assistant" and kind == "tool_call":
                call = {k: part.get(k) for k in ("id", "name", "input", "status")}
                yield "body", {"type": "tool_call", "toolCall": call}
            elif role == "tool" and kind == "tool_result":
                yield "body", {"type": "tool_result", **{k: v for k, v in part.items() if k != "type"}}
