"""Errors the backend raises, each with its stable `data.reason` (PROTOCOL section 5).

The backend and agent raise these without knowing JSON-RPC; the server module
turns them into JSON-RPC errors with `code`, `message` and `data.reason`.
"""

from __future__ import annotations

CODES = {
    "invalid_params": -32602,
    "empty_prompt": -32602,
    "session_missing": -32602,
    "workspace_not_found": -32011,
    "agent_not_initialized": -32012,
    "workspace_closing": -32013,
    "session_not_found": -32014,
    "session_busy": -32015,
    "server_shutting_down": -32016,
    "storage_failed": -32603,
    "hunk_not_applicable": -32017,
    "nothing_to_unrewind": -32018,
}


class ClientDeclined(Exception):
    """The client answered a server-to-client request with an error, or cancelled it."""


class CrushError(Exception):
    """An error a client can branch on (by `reason`) and a person can act on (by message)."""

    reason = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> int:
        return CODES.get(self.reason, -32603)


class InvalidParams(CrushError):
    reason = "invalid_params"


class EmptyPrompt(CrushError):
    reason = "empty_prompt"


class SessionMissing(CrushError):
    reason = "session_missing"


class WorkspaceNotFound(CrushError):
    reason = "workspace_not_found"


class AgentNotInitialized(CrushError):
    reason = "agent_not_initialized"


class WorkspaceClosing(CrushError):
    reason = "workspace_closing"


class SessionNotFound(CrushError):
    reason = "session_not_found"


class SessionBusy(CrushError):
    reason = "session_busy"


class ServerShuttingDown(CrushError):
    reason = "server_shutting_down"


class StorageFailed(CrushError):
    """A change could not be written to the workspace's database (disk full, locked by another process...)."""

    reason = "storage_failed"


class HunkNotApplicable(CrushError):
    """agent/review: a hunk is unknown, already rejected or no longer in the file; nothing was changed."""

    reason = "hunk_not_applicable"


class NothingToUnrewind(CrushError):
    reason = "nothing_to_unrewind"
