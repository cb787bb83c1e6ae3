"""The wire contract's names and request params (PROTOCOL sections 2 and 3).

Params are plain attrs classes structured strictly by `wire.PARAMS`
(camelCase on the wire). Results and notifications are built as plain dicts
of JSON types: they are sent often and cheaply.
"""

from __future__ import annotations

from typing import Literal

import attrs

from .config import ModelConfig

PROTOCOL_VERSION = 1

SEND_MESSAGE = "agent/sendMessage"
CANCEL = "agent/cancel"
STATUS = "agent/status"
QUEUED_PROMPTS = "agent/queuedPrompts"
CLEAR_QUEUE = "agent/clearQueue"
SUMMARIZE = "agent/summarize"
MODELS = "agent/models"
SET_MODEL = "agent/setModel"
SESSION_CREATE = "session/create"
SESSION_LIST = "session/list"
SESSION_GET = "session/get"
SESSION_MESSAGES = "session/messages"
SESSION_RENAME = "session/rename"
SESSION_DELETE = "session/delete"

NOTIFICATION = "agent/notification"
REQUEST_PERMISSION = "agent/requestPermission"

METHODS = [
    SEND_MESSAGE, CANCEL, STATUS, QUEUED_PROMPTS, CLEAR_QUEUE, SUMMARIZE, MODELS, SET_MODEL,
    SESSION_CREATE, SESSION_LIST, SESSION_GET, SESSION_MESSAGES, SESSION_RENAME, SESSION_DELETE,
]
NOTIFICATION_TYPES = [
    "run_queued", "run_started", "message_created", "text_delta", "reasoning_delta", "tool_call",
    "tool_result", "permission_requested", "permission_resolved", "message_finished",
    "session_updated", "agent_error", "run_complete",
]


@attrs.define
class Attachment:
    path: str | None = None
    uri: str | None = None
    mime_type: str | None = None
    text: str | None = None
    content: str | None = None  # base64

    def to_dict(self) -> dict[str, str]:
        raw = {"path": self.path, "uri": self.uri, "mimeType": self.mime_type,
               "text": self.text, "content": self.content}
        return {k: v for k, v in raw.items() if v is not None}


@attrs.define
class WorkspaceParams:
    workspace: str | None = None


@attrs.define
class SessionParams:
    workspace: str | None = None
    session_id: str | None = None


@attrs.define
class SendMessageParams:
    workspace: str | None = None
    session_id: str | None = None
    prompt: str | None = None
    run_id: str | None = None
    attachments: list[Attachment] = attrs.Factory(list)
    mode: Literal["queue", "steer"] = "queue"


@attrs.define
class CancelParams:
    workspace: str | None = None
    session_id: str | None = None
    run_id: str | None = None


@attrs.define
class CreateSessionParams:
    workspace: str | None = None
    title: str | None = None


@attrs.define
class RenameSessionParams:
    workspace: str | None = None
    session_id: str | None = None
    title: str | None = None


@attrs.define
class SetModelParams:
    model: ModelConfig
    workspace: str | None = None
