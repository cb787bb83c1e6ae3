"""The wire contract of crush-ls: every name, shape and error a client sees (docs/protocol.md).

One home for the contract, so that a wire question has one place to look:

- here: the method names and the capability lists `initialize` announces;
- `params`: the request params, attrs classes structured strictly by `convert`;
- `shapes`: TypedDicts of every result, notification body and message part;
- `encode`: domain records (sessions, messages, models, usage) to their wire form;
- `errors`: the `CrushError` family, each with its stable `data.reason` and code;
- `convert`: the strict cattrs converters and their one-line error text.

`EncodedJson` is here rather than in `encode`, which the server does not need
before its `initialize` answer (a module less to load at start-up).

This package imports nothing else of crush_ls: every other layer may import it.
The request params are re-exported here for the server's handler table.
"""

from __future__ import annotations

import attrs

from .capabilities import ClientCapabilities
from .params import (
    Attachment,
    CancelParams,
    ChangesParams,
    ContextItem,
    CreateSessionParams,
    DiagnosticsResult,
    HunkDecision,
    ModelSelection,
    RenameSessionParams,
    ReviewParams,
    RewindParams,
    SendMessageParams,
    SessionParams,
    SetModelParams,
    UnrewindParams,
    WorkspaceParams,
)

PROTOCOL_VERSION = 1

SEND_MESSAGE = "agent/sendMessage"
CANCEL = "agent/cancel"
STATUS = "agent/status"
QUEUED_PROMPTS = "agent/queuedPrompts"
CLEAR_QUEUE = "agent/clearQueue"
POP_QUEUE = "agent/popQueue"
SUMMARIZE = "agent/summarize"
MODELS = "agent/models"
SET_MODEL = "agent/setModel"
MCP_SERVERS = "agent/mcpServers"
CHANGES = "agent/changes"
REVIEW = "agent/review"
REWIND = "agent/rewind"
UNREWIND = "agent/unrewind"
SESSION_CREATE = "session/create"
SESSION_LIST = "session/list"
SESSION_GET = "session/get"
SESSION_MESSAGES = "session/messages"
SESSION_RENAME = "session/rename"
SESSION_DELETE = "session/delete"

NOTIFICATION = "agent/notification"
REQUEST_PERMISSION = "agent/requestPermission"
# Server-to-client requests of "Documents and edits" (LSP's own: workspace/applyEdit, window/showDocument).
SAVE_DOCUMENT = "agent/saveDocument"
APPLY_EDIT = "workspace/applyEdit"
SHOW_DOCUMENT = "window/showDocument"
DIAGNOSTICS = "agent/diagnostics"  # server to client, when the client declares experimental.crush.diagnostics

METHODS = [
    SEND_MESSAGE, CANCEL, STATUS, QUEUED_PROMPTS, CLEAR_QUEUE, POP_QUEUE, SUMMARIZE, MODELS, SET_MODEL, MCP_SERVERS,
    CHANGES, REVIEW, REWIND, UNREWIND,
    SESSION_CREATE, SESSION_LIST, SESSION_GET, SESSION_MESSAGES, SESSION_RENAME, SESSION_DELETE,
]
NOTIFICATION_TYPES = [
    "run_queued", "run_started", "message_created", "text_delta", "reasoning_delta", "tool_call",
    "tool_result", "permission_requested", "permission_resolved", "message_finished",
    "session_updated", "agent_error", "run_complete", "mcp_updated", "change_reviewed",
]


@attrs.frozen
class EncodedJson:
    """A result already written as JSON text, sent as it is (`session/messages` of a long session:
    its parts are the stored JSON text, never parsed nor encoded again)."""

    text: str


__all__ = [
    "Attachment", "CancelParams", "ChangesParams", "ContextItem", "CreateSessionParams", "DiagnosticsResult",
    "HunkDecision", "ModelSelection", "RenameSessionParams", "ReviewParams", "RewindParams", "SendMessageParams",
    "SessionParams", "SetModelParams", "UnrewindParams", "WorkspaceParams",
    "ClientCapabilities", "EncodedJson",
    "PROTOCOL_VERSION", "METHODS", "NOTIFICATION_TYPES", "NOTIFICATION", "REQUEST_PERMISSION",
    "SAVE_DOCUMENT", "APPLY_EDIT", "SHOW_DOCUMENT", "DIAGNOSTICS",
    "SEND_MESSAGE", "CANCEL", "STATUS", "QUEUED_PROMPTS", "CLEAR_QUEUE", "SUMMARIZE", "MODELS", "SET_MODEL",
    "MCP_SERVERS", "POP_QUEUE", "CHANGES", "REVIEW", "REWIND", "UNREWIND",
    "SESSION_CREATE", "SESSION_LIST", "SESSION_GET", "SESSION_MESSAGES", "SESSION_RENAME", "SESSION_DELETE",
]
