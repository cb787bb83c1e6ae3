"""A session's stored messages as the vendors need them: user turns, assistant turns, tool results.

What every provider that sends a conversation (OpenAI, Anthropic, the
embedded model) does before translating it into its own format.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from typing import Any

import attrs

from ..protocol.params import range_lines

MISSING_RESULT = "Error: the tool call did not complete, so it has no result."


@attrs.frozen
class UserTurn:
    parts: list[dict[str, Any]]  # wire parts of type text / binary, none empty


@attrs.frozen
class AssistantTurn:
    # wire parts of type reasoning / text / tool_call in stored order,
    # consecutive texts joined, empty ones dropped
    parts: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return "".join(p["text"] for p in self.parts if p["type"] == "text")

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [p for p in self.parts if p["type"] == "tool_call"]


@attrs.frozen
class ToolResults:
    # one wire tool_result part per tool call of the assistant turn before
    results: list[dict[str, Any]]


VendorTurn = UserTurn | AssistantTurn | ToolResults


def conversation(messages: list[dict[str, Any]]) -> list[VendorTurn]:
    """The stored messages as vendors need them.

    Every assistant turn with tool calls is followed by exactly one result
    per call, in call order (vendors reject a history without them): results
    are taken from wherever they were stored, a call without one gets an
    error result, and results of unknown calls are dropped. Empty messages
    (a turn cancelled before any output) are left out.
    """
    results: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
    for message in messages:
        for part in message.get("parts") or []:
            if part.get("type") == "tool_result":
                results[str(part.get("toolCallId"))].append(part)

    turns: list[VendorTurn] = []
    for message in messages:
        role = message.get("role")
        parts = message.get("parts") or []
        if role == "user":
            content = [p for p in parts if _is_user_content(p)]
            context = context_text(parts)
            if context:  # the editor's context is read right after the prompt's own text
                at = next((i + 1 for i, p in enumerate(content) if p["type"] == "text"), 0)
                content.insert(at, {"type": "text", "text": context})
            if content:
                turns.append(UserTurn(content))
        elif role == "assistant":
            turn = _assistant_turn(parts)
            if turn is None:
                continue
            turns.append(turn)
            if turn.tool_calls:
                turns.append(ToolResults([_result_for(call, results) for call in turn.tool_calls]))
    return turns


def _is_user_content(part: dict[str, Any]) -> bool:
    if part.get("type") == "text":
        return bool(part.get("text"))
    return part.get("type") == "binary" and bool(part.get("data"))


def _assistant_turn(parts: list[dict[str, Any]]) -> AssistantTurn | None:
    kept: list[dict[str, Any]] = []
    for part in parts:
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            if kept and kept[-1]["type"] == "text":
                kept[-1] = {"type": "text", "text": kept[-1]["text"] + part["text"]}
            else:
                kept.append({"type": "text", "text": part["text"]})
        elif kind == "reasoning" and (part.get("text") or part.get("signature")):
            kept.append(part)
        elif kind == "tool_call" and part.get("id") and part.get("name"):
            kept.append(part)
    if not any(p["type"] != "reasoning" for p in kept):
        return None  # reasoning alone is not a reply a vendor accepts back
    return AssistantTurn(kept)


def _result_for(call: dict[str, Any], results: dict[str, deque[dict[str, Any]]]) -> dict[str, Any]:
    pending = results.get(str(call["id"]))
    if pending:
        return pending.popleft()
    return {"type": "tool_result", "toolCallId": call["id"], "name": call["name"],
            "content": MISSING_RESULT, "isError": True}


def result_text(result: dict[str, Any]) -> str:
    content = result.get("content")
    if isinstance(content, str):
        return content
    return json.dumps(content)


def binary_note(part: dict[str, Any]) -> str:
    """What a model reads in place of an attachment its API cannot take."""
    name = part.get("path") or "attachment"
    return f"[{name} ({part.get('mimeType') or 'unknown type'}) is attached but cannot be shown to this model]"


def context_text(parts: list[dict[str, Any]]) -> str:
    """What a model reads of a user message's `context` parts (editor context, PROTOCOL section 2)."""
    blocks = [_context_block(p) for p in parts if p.get("type") == "context"]
    return "<editor_context>\n" + "\n".join(blocks) + "\n</editor_context>" if blocks else ""


def _context_block(part: dict[str, Any]) -> str:
    kind = part.get("kind") or "file"
    attrs_text = f"path='{part.get('path') or part.get('uri')}'"
    lines = part.get("range")
    if kind == "selection" and isinstance(lines, dict):
        first, last = range_lines(lines)
        attrs_text += f" lines='{first + 1}-{last + 1}'"
    text = str(part.get("text") or "")
    return f"<{kind} {attrs_text}>\n{text}{'' if text.endswith(chr(10)) or not text else chr(10)}</{kind}>"
