"""Domain records to their wire form, in one place (PROTOCOL section 6).

Sessions, messages, models and usage are kept by storage, providers and the
agent without knowing how a client sees them; the backend and the agent call
these at the edge. The records are described by what is read of them
(Protocols), so this module imports nothing of the layers that own them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from . import shapes


def iso(ts: float) -> str:
    """A Unix time as the wire's ISO 8601 UTC string, to the millisecond."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_COMPACT = json.JSONEncoder(separators=(",", ":"))  # json.dumps builds an encoder per call otherwise


class SessionRecord(Protocol):
    id: str
    title: str
    created_at: float
    updated_at: float
    message_count: int
    prompt_tokens: int
    completion_tokens: int
    cost: float


class MessageRecord(Protocol):
    id: str
    session_id: str
    role: str
    parts: list[dict[str, Any]]
    created_at: float
    updated_at: float
    model: str | None
    provider: str | None


class ModelRecord(Protocol):
    @property
    def provider(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def context_window(self) -> int: ...
    @property
    def supports_tools(self) -> bool: ...


class UsageRecord(Protocol):
    input_tokens: int
    output_tokens: int
    cost: float


def session_to_wire(session: SessionRecord, busy: bool = False) -> shapes.Session:
    return {
        "id": session.id,
        "title": session.title,
        "createdAt": iso(session.created_at),
        "updatedAt": iso(session.updated_at),
        "messageCount": session.message_count,
        "promptTokens": session.prompt_tokens,
        "completionTokens": session.completion_tokens,
        "cost": session.cost,
        "busy": busy,
    }


def message_to_wire(message: MessageRecord) -> shapes.Message:
    # Parts are stored in their wire form already: sent as they are, not copied.
    wire: shapes.Message = {
        "id": message.id,
        "sessionId": message.session_id,
        "role": cast(shapes.Role, message.role),
        "parts": cast("list[shapes.Part]", message.parts),
        "createdAt": iso(message.created_at),
        "updatedAt": iso(message.updated_at),
    }
    if message.model:
        wire["model"] = message.model
    if message.provider:
        wire["provider"] = message.provider
    return wire


def message_json(message: MessageRecord, parts_json: str) -> str:
    """`message_to_wire` as JSON text, its parts the JSON text `parts_json` as it is (`message.parts`
    is not read)."""
    wire = dict(message_to_wire(message))
    del wire["parts"]
    head = _COMPACT.encode(wire)
    return f'{head[:-1]},"parts":{parts_json}}}'


def model_to_wire(info: ModelRecord) -> shapes.Model:
    return {
        "provider": info.provider,
        "model": info.model,
        "name": info.name or info.model,
        "contextWindow": info.context_window,
        "supportsTools": info.supports_tools,
    }


def usage_to_wire(usage: UsageRecord | None = None) -> shapes.Usage:
    """A run's usage; None is a run that used nothing."""
    if usage is None:
        return {"inputTokens": 0, "outputTokens": 0, "cost": 0.0}
    return {"inputTokens": usage.input_tokens, "outputTokens": usage.output_tokens, "cost": usage.cost}
