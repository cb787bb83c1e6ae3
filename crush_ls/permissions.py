"""Deciding whether a tool call may run (PROTOCOL section 4).

Order: access outside the workspace always asks a person; `allowedTools`
and earlier `allow_session` grants allow; mode `allow` allows, `deny`
denies; mode `ask` asks a client that declared the capability, and without
one the call is denied. Every decision is announced with
`permission_requested` and `permission_resolved`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import attrs

from .settings import PermissionSettings

log = logging.getLogger(__name__)

ALLOW = "allow"
ALLOW_SESSION = "allow_session"
DENY = "deny"
TIMEOUT = "timeout"
CANCELED = "canceled"
ANSWERS = frozenset({ALLOW, ALLOW_SESSION, DENY})


@attrs.frozen
class Access:
    """What one tool call would do, declared by the tool before it runs (PROTOCOL section 4)."""

    action: str  # read | list | write | execute | fetch | "" (todos)
    path: str | None  # absolute resolved path; for bash the working directory
    inside: bool  # the path resolves inside the workspace folder
    # Inside the workspace, does this call need a decision? (write, bash, fetch ...)
    asks_inside: bool
    description: str
    # Other names under which permissions.allowedTools allows the call (an MCP tool's server-wide ones).
    aliases: tuple[str, ...] = ()


class PermissionAsker(Protocol):
    """How the agent reaches a person: implemented by the transport."""

    def can_ask(self) -> bool: ...

    async def ask(self, params: dict[str, Any]) -> Any:
        """Send `agent/requestPermission`; cancelling the await withdraws it."""
        ...


def granted(decision: str) -> bool:
    return decision in (ALLOW, ALLOW_SESSION)


def _grant_scope(path: str | None) -> str:
    if path is None:
        return ""
    return path if os.path.isdir(path) else os.path.dirname(path)


class Permissions:
    """The permission service of one workspace."""

    def __init__(self, settings: PermissionSettings, asker: PermissionAsker) -> None:
        self.settings = settings
        self.asker = asker
        self._session_grants: set[tuple[str, str, str, str]] = set()
        # Pending requests by id, in wire form, for `agent/status`.
        self.pending: dict[str, dict[str, Any]] = {}

    def needs_decision(self, access: Access) -> bool:
        return not access.inside or access.asks_inside

    def _preapproved(self, session_id: str, tool: str, access: Access) -> bool:
        allowed = self.settings.allowed_tools
        if any(name in allowed or f"{name}:{access.action}" in allowed for name in (tool, *access.aliases)):
            return True
        return (session_id, tool, access.action, _grant_scope(access.path)) in self._session_grants

    async def decide(
        self,
        *,
        session_id: str,
        run_id: str,
        tool_call_id: str,
        tool: str,
        access: Access,
        input: Any,
        emit: Callable[[dict[str, Any]], None],
        on_asking: Callable[[], None] | None = None,
    ) -> str:
        """Decide one call; returns allow, allow_session, deny, timeout or canceled.

        `emit` sends a notification of the run (it adds workspace, session and
        run ids). Cancelling the caller withdraws a pending request.
        """
        permission = {
            "id": uuid.uuid4().hex,
            "toolCallId": tool_call_id,
            "tool": tool,
            "action": access.action,
            "path": access.path,
            "description": access.description,
            "input": input,
        }
        emit({"type": "permission_requested", "permission": permission})

        def resolved(decision: str) -> None:
            emit({
                "type": "permission_resolved",
                "permissionId": permission["id"],
                "toolCallId": tool_call_id,
                "decision": decision,
            })

        try:
            decision = await self._decision(session_id, run_id, tool, access, permission, on_asking)
        except asyncio.CancelledError:
            resolved(CANCELED)
            raise
        except Exception:
            resolved(DENY)  # a request must never be left unresolved for the client
            raise
        if decision == ALLOW_SESSION:
            self._session_grants.add((session_id, tool, access.action, _grant_scope(access.path)))
        resolved(decision)
        return decision

    async def _decision(
        self, session_id: str, run_id: str, tool: str, access: Access,
        permission: dict[str, Any], on_asking: Callable[[], None] | None,
    ) -> str:
        if access.inside:
            if self._preapproved(session_id, tool, access) or self.settings.mode == "allow":
                return ALLOW
            if self.settings.mode == "deny":
                return DENY
        if not self.asker.can_ask():
            return DENY
        if on_asking is not None:
            on_asking()
        return await self._ask_person(session_id, run_id, permission)

    async def _ask_person(self, session_id: str, run_id: str, permission: dict[str, Any]) -> str:
        # With its session and run: agent/status filters on them (and strips them).
        self.pending[permission["id"]] = {**permission, "sessionId": session_id, "runId": run_id}
        params = {"sessionId": session_id, "runId": run_id, "permission": permission}
        try:
            answer = await asyncio.wait_for(self.asker.ask(params), self.settings.timeout_ms / 1000)
        except TimeoutError:
            return TIMEOUT
        except Exception as exc:  # noqa: BLE001 - an error answer counts as deny
            log.info("permission request %s answered with an error: %s", permission["id"], exc)
            return DENY
        finally:
            self.pending.pop(permission["id"], None)
        decision = answer.get("decision") if isinstance(answer, dict) else None
        # Anything but one of the three strings (a list, an object, a number) is a deny.
        return decision if isinstance(decision, str) and decision in ANSWERS else DENY

    def forget_session(self, session_id: str) -> None:
        self._session_grants = {g for g in self._session_grants if g[0] != session_id}
