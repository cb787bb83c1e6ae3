"""What storage keeps: sessions and messages, as the agent works with them.

They know nothing of the wire: `crush_ls.protocol.encode` gives their wire
form. Message parts are kept in their wire shape (`protocol.shapes.Part`),
because they are stored, replayed to models and sent as they are.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import attrs

DEFAULT_TITLE = "New Session"


def now() -> float:
    return time.time()


def new_id() -> str:
    return uuid.uuid4().hex


@attrs.define
class Session:
    id: str
    title: str
    created_at: float
    updated_at: float
    message_count: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    summary_message_id: str | None = None
    todos: list[dict[str, Any]] = attrs.Factory(list)
    parent_session_id: str | None = None


@attrs.define
class Message:
    id: str
    session_id: str
    role: str  # user | assistant | tool
    parts: list[dict[str, Any]]
    created_at: float
    updated_at: float
    model: str | None = None
    provider: str | None = None
    is_summary: bool = False

    def for_model(self) -> dict[str, Any]:
        """What a provider needs of a message: cheap, because every model call sends the history."""
        return {"role": self.role, "parts": self.parts}

    def text(self) -> str:
        return "".join(p["text"] for p in self.parts if p.get("type") == "text")

    def finish_reason(self) -> str | None:
        for part in reversed(self.parts):
            if part.get("type") == "finish":
                reason: str | None = part.get("reason")
                return reason
        return None
