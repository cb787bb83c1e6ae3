"""Every `agent/*` and `session/*` operation, on the workspace a request names.

Methods that change state do so synchronously, the moment the request
arrives (so requests take effect in the order they arrive); where storage
must be awaited they return an awaitable for the rest.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ..agent.context import MAX_ITEMS as MAX_CONTEXT_ITEMS
from ..protocol import EncodedJson, shapes
from ..protocol.encode import model_to_wire
from ..protocol.errors import CrushError, EmptyPrompt, InvalidParams, SessionBusy, StorageFailed
from ..protocol.params import (
    CancelParams,
    ChangesParams,
    ContextItem,
    ModelSelection,
    ReviewParams,
    RewindParams,
    SendMessageParams,
    UnrewindParams,
)
from ..providers import create_provider, local_model_available, reads_files, with_files_read
from ..settings import ModelConfig
from ..tools.paths import is_inside, relative_display
from . import changes
from .registry import CLOSE_TIMEOUT, WorkspaceRegistry
from .workspace import Workspace, uri_to_path

log = logging.getLogger(__name__)
T = TypeVar("T")


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text)  # as the turn decodes it
    except ValueError:  # binascii.Error
        return False
    return True


class Backend(WorkspaceRegistry):
    """The transport-free backend: workspaces (`WorkspaceRegistry`) and what requests do in them."""

    # ------------------------------------------------------------------ agent/*
    def send_message(self, params: SendMessageParams) -> dict[str, Any]:
        for index, attachment in enumerate(params.attachments):  # malformed params fail now, not in the run
            if attachment.content is not None and not _is_base64(attachment.content):
                raise InvalidParams(
                    f"agent/sendMessage: attachment content must be base64 @ params.attachments[{index}].content")
        workspace = self.workspace(params.workspace)
        coordinator = workspace.agent.coordinator
        if params.run_id is not None and params.run_id in coordinator.live_run_ids:
            raise InvalidParams(f"agent/sendMessage: runId {params.run_id!r} is already used by a run that has "
                                "not completed @ params.runId")
        context = self._checked_context(params.context, workspace)
        workspace.require_model()
        attachments = [a.to_dict() for a in params.attachments]
        has_text_attachment = any(a.text is not None or (a.mime_type or "").startswith("text/")
                                  for a in params.attachments)
        if (params.prompt is None or not params.prompt.strip()) and not has_text_attachment and not context:
            raise EmptyPrompt("The prompt is empty: send some text (or a text attachment, or editor context).")
        session = workspace.session(params.session_id)
        if session.id in workspace.rewinding:
            raise SessionBusy(f"Session {session.id!r} is being rewound; send the prompt once that is answered.")
        workspace.require_open("; no new prompts are accepted")
        run = workspace.agent.new_run(
            session.id, params.run_id or uuid.uuid4().hex, params.prompt or "", attachments, params.mode, context
        )
        queued, position = coordinator.accept(run)
        return {"accepted": True, "runId": run.id, "sessionId": session.id, "queued": queued, "position": position}

    def _checked_context(self, items: list[ContextItem], workspace: Workspace) -> list[dict[str, Any]]:
        """The context items with their files named (PROTOCOL "Editor context"), or InvalidParams."""
        if len(items) > MAX_CONTEXT_ITEMS:
            raise InvalidParams(f"agent/sendMessage: at most {MAX_CONTEXT_ITEMS} context items, got {len(items)} "
                                "@ params.context")
        checked = []
        for index, item in enumerate(items):
            at = f"@ params.context[{index}]"
            try:
                path = Path(os.path.realpath(uri_to_path(item.uri))) if item.uri.startswith("file:") else None
            except ValueError:
                path = None
            if path is None:
                raise InvalidParams(f"agent/sendMessage: {item.uri!r} is not a file: URI {at}.uri")
            if item.kind == "selection" and item.range is None:
                raise InvalidParams(f"agent/sendMessage: a selection needs its range {at}.range")
            r = item.range
            if r is not None and (r.end.line, r.end.character) < (r.start.line, r.start.character):
                raise InvalidParams(f"agent/sendMessage: the range ends before it starts {at}.range")
            inside = is_inside(workspace.root, path)
            if item.text is None and not inside:
                raise InvalidParams(f"agent/sendMessage: {item.uri} is outside the workspace folder; crush-ls "
                                    f"reads no file outside it for a client: send the item's text {at}.uri")
            if item.text is None and item.kind == "diagnostics" and self.diagnostics is None:
                raise InvalidParams("agent/sendMessage: diagnostics without text need a client that answers "
                                    f"agent/diagnostics (capabilities.experimental.crush.diagnostics) {at}.text")
            checked.append({**item.to_dict(), "path": relative_display(workspace.root, path),
                            "file": str(path) if inside else None})
        return checked

    def cancel(self, params: CancelParams) -> dict[str, Any]:
        workspace = self.workspace(params.workspace)
        session = workspace.session(params.session_id)
        return {"canceled": workspace.agent.coordinator.cancel(session.id, params.run_id)}

    def status(self, workspace_uri: str | None, session_id: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        coordinator = workspace.agent.coordinator
        info = workspace.model_info()
        pending = list(workspace.agent.permissions.pending.values())
        if session_id is None:
            busy, active_id, queued = coordinator.any_busy(), None, coordinator.all_queued()
        else:
            session = workspace.session(session_id)
            active = coordinator.active_run(session.id)
            busy, active_id, queued = active is not None, active.id if active else None, coordinator.queued(session.id)
            run_ids = {active_id} | {r.id for r in queued}
            pending = [p for p in pending if p.get("runId") in run_ids or p.get("sessionId") == session.id]
        return {
            "busy": busy,
            "activeRunId": active_id,
            "queued": [{"runId": r.id, "prompt": r.prompt} for r in queued],
            "pendingPermissions": [{k: v for k, v in p.items() if k not in ("sessionId", "runId")} for p in pending],
            "model": model_to_wire(info) if info else None,
        }

    def summarize(self, workspace_uri: str | None, session_id: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        session = workspace.session(session_id)
        workspace.require_model()
        coordinator = workspace.agent.coordinator
        if coordinator.is_busy(session.id) or coordinator.line(session.id).waiting:
            raise SessionBusy(f"Session {session.id!r} is running a prompt; summarize it when it is idle.")
        workspace.require_open()
        run = workspace.agent.new_summary_run(session.id, uuid.uuid4().hex)
        coordinator.accept(run)
        return {"accepted": True, "runId": run.id}

    def queued_prompts(self, workspace_uri: str | None, session_id: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        queued = workspace.agent.coordinator.queued(workspace.session(session_id).id)
        return {"prompts": [r.prompt for r in queued], "runIds": [r.id for r in queued]}

    def clear_queue(self, workspace_uri: str | None, session_id: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        dropped = workspace.agent.coordinator.clear_queue(workspace.session(session_id).id)
        return {"cleared": len(dropped), "prompts": [r.prompt for r in dropped], "runIds": [r.id for r in dropped]}

    def pop_queue(self, workspace_uri: str | None, session_id: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        run = workspace.agent.coordinator.pop_queue(workspace.session(session_id).id)
        if run is None:
            return {"prompt": None, "runId": None, "attachments": []}
        return {"prompt": run.prompt, "runId": run.id, "attachments": run.attachments}

    # ------------------------------------------------------------------ review and rewind (backend/changes.py)
    def changes(self, params: ChangesParams) -> Awaitable[shapes.ChangesResult]:
        workspace = self.workspace(params.workspace)
        session = workspace.session(params.session_id)
        if params.run_id is not None and params.since_message_id is not None:
            raise InvalidParams("agent/changes: give runId or sinceMessageId, not both @ params.sinceMessageId")
        return changes.changes(workspace, session, params.run_id, params.since_message_id)

    def review(self, params: ReviewParams) -> Awaitable[shapes.ReviewResult]:
        workspace = self.workspace(params.workspace)
        session = workspace.session(params.session_id)
        if not params.path:
            raise InvalidParams("agent/review: path is missing @ params.path")
        if not params.hunks:
            raise InvalidParams("agent/review: give at least one hunk @ params.hunks")
        decisions = list({h.id: h.decision for h in params.hunks}.items())
        return changes.review(workspace, session, params.path, decisions)

    def rewind(self, params: RewindParams) -> Awaitable[shapes.RewindResult]:
        if not params.message_id:
            raise InvalidParams("agent/rewind: messageId is missing @ params.messageId")
        workspace, session = self._idle_session(params.workspace, params.session_id, "rewind")
        return self._rewinding(workspace, session.id, changes.rewind(workspace, session, params.message_id,
                                                                     params.force))

    def unrewind(self, params: UnrewindParams) -> Awaitable[shapes.UnrewindResult]:
        workspace, session = self._idle_session(params.workspace, params.session_id, "unrewind")
        return self._rewinding(workspace, session.id, changes.unrewind(workspace, session, params.force))

    @staticmethod
    async def _rewinding(workspace: Workspace, session_id: str, work: Awaitable[T]) -> T:
        """Prompts (and other rewinds) of the session are refused until `work` is done."""
        try:
            return await work
        finally:
            workspace.rewinding.discard(session_id)

    def _idle_session(self, workspace_uri: str | None, session_id: str | None, what: str) -> tuple[Workspace, Any]:
        workspace = self.workspace(workspace_uri)
        session = workspace.session(session_id)
        coordinator = workspace.agent.coordinator
        if coordinator.is_busy(session.id) or coordinator.line(session.id).waiting or session.id in workspace.rewinding:
            raise SessionBusy(f"Session {session.id!r} is running a prompt (or a rewind); {what} it when it is "
                              "idle (agent/cancel ends a run).")
        workspace.require_open()
        workspace.rewinding.add(session.id)  # taken at once: a prompt right behind this request is refused
        return workspace, session

    def models(self, workspace_uri: str | None) -> dict[str, Any]:
        """The current model and every usable one: crush.json's, the current, the embedded one."""
        workspace = self.workspace(workspace_uri)
        current = workspace.model_info()
        candidates = [*workspace.settings.available_models]
        if local_model_available():
            candidates.append(ModelConfig(provider="local"))
        available = [current] if current else []
        seen = {(current.provider, current.model)} if current else set()
        for config in candidates:
            # Building a provider makes no connection; it is the one place that knows a
            # model's window and prices, and it fails for a model that cannot be used
            # (a key variable that is not set, a missing GGUF): those are left out.
            try:
                info = create_provider(config, workspace.root).info
            except CrushError as exc:
                log.info("agent/models: leaving out %s/%s: %s", config.provider, config.model, exc.message)
                continue
            if (info.provider, info.model) not in seen:
                seen.add((info.provider, info.model))
                available.append(info)
        return {"current": model_to_wire(current) if current else None,
                "available": [model_to_wire(i) for i in available]}

    def mcp_servers(self, workspace_uri: str | None) -> dict[str, Any]:
        """The workspace's MCP servers: name, type, state, error and tools (docs/mcp.md)."""
        return {"servers": self.workspace(workspace_uri).mcp.to_wire()}

    def set_model(self, workspace_uri: str | None, selection: ModelSelection) -> Any:
        """Switch the workspace's model for the next runs (a running turn keeps its own).

        A model that names a file (a script) is switched once the file is read, off the event
        loop; runs that start meanwhile wait for the switch.
        """
        workspace = self.workspace(workspace_uri)
        config = ModelConfig(**attrs.asdict(selection, recurse=False))  # the wire's model, as settings
        # A model named by provider and id gets its key, base URL, window and prices from crush.json.
        config = workspace.settings.complete_model(config)
        if not reads_files(config):
            return self._switch_model(workspace, config)
        # A task, not a coroutine: it switches even if the caller never awaits the answer.
        switching = asyncio.ensure_future(self._switch_model_later(workspace, config))
        workspace.agent.models.hold_until(switching)
        return switching

    async def _switch_model_later(self, workspace: Workspace, config: ModelConfig) -> dict[str, Any]:
        return self._switch_model(workspace, await with_files_read(config, workspace.root))

    @staticmethod
    def _switch_model(workspace: Workspace, config: ModelConfig) -> dict[str, Any]:
        provider = create_provider(config, workspace.root)  # or AgentNotInitialized, saying why
        workspace.agent.set_provider(provider)
        workspace.model_error = None
        return {"current": model_to_wire(provider.info)}

    # ------------------------------------------------------------------ session/*
    def create_session(self, workspace_uri: str | None, title: str | None) -> Awaitable[shapes.Session]:
        workspace = self.workspace(workspace_uri)
        workspace.require_open()
        session = workspace.store.new_session(title)  # requests behind this one see it at once

        async def answer() -> shapes.Session:
            try:
                await workspace.store.committed(session.id)  # answered once it is on disk
            except StorageFailed:
                workspace.store.forget_session(session.id)
                raise
            return workspace.session_wire(session)

        return answer()

    def list_sessions(self, workspace_uri: str | None) -> dict[str, Any]:
        workspace = self.workspace(workspace_uri)
        return {"sessions": [workspace.session_wire(s) for s in workspace.store.list_sessions()]}

    def get_session(self, workspace_uri: str | None, session_id: str | None) -> shapes.Session:
        workspace = self.workspace(workspace_uri)
        return workspace.session_wire(workspace.session(session_id))

    def session_messages(self, workspace_uri: str | None, session_id: str | None) -> Awaitable[dict[str, Any]]:
        answer = self.session_messages_json(workspace_uri, session_id)

        async def parsed() -> dict[str, Any]:
            result: dict[str, Any] = json.loads((await answer).text)
            return result

        return parsed()

    def session_messages_json(self, workspace_uri: str | None, session_id: str | None) -> Awaitable[EncodedJson]:
        """`session_messages` as the JSON text it is answered with (what the server sends)."""
        workspace = self.workspace(workspace_uri)
        session = workspace.session(session_id)

        async def read() -> EncodedJson:
            return EncodedJson(f'{{"messages":{await workspace.store.messages_json(session.id)}}}')

        return read()

    def rename_session(self, workspace_uri: str | None, session_id: str | None,
                       title: str | None) -> Awaitable[shapes.Session]:
        workspace = self.workspace(workspace_uri)
        session = workspace.session(session_id)
        if title is None or not title.strip():
            raise InvalidParams("session/rename: title must be a non-empty string @ params.title")
        session.title = title.strip()

        async def save() -> shapes.Session:
            workspace.store.save_session(session)
            await workspace.store.committed(session.id)
            workspace.agent.session_updated(session, None)
            return workspace.session_wire(session)

        return save()

    def delete_session(self, workspace_uri: str | None, session_id: str | None) -> Awaitable[dict[str, Any]]:
        workspace = self.workspace(workspace_uri)
        session = workspace.session(session_id)
        coordinator = workspace.agent.coordinator
        coordinator.cancel(session.id)
        worker = coordinator.line(session.id).worker
        workspace.store.forget_session(session.id)  # new requests see it gone at once

        async def delete() -> dict[str, Any]:
            if worker is not None:
                await asyncio.wait({worker}, timeout=CLOSE_TIMEOUT)
            workspace.store.delete_session(session.id)
            await workspace.store.committed(session.id)
            workspace.agent.permissions.forget_session(session.id)
            return {}

        return delete()
