"""The agent of one workspace: runs turns, keeps session usage, names sessions.

`Agent` is transport-free: it gets a `send` for notifications, the store,
the provider, the tools and the permission service, and it is driven by its
`Coordinator` (accept, queue, steer, cancel). Tests can use it without a
client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..permissions import Permissions
from ..protocol.encode import session_to_wire
from ..protocol.errors import CrushError
from ..providers.base import ModelInfo, Provider, ProviderError, ToolSpec, Usage
from ..settings import Settings
from ..storage import DEFAULT_TITLE, Message, Session, Store
from ..tools import Tool
from ..tools.base import Files
from ..tools.diagnostics import DiagnosticsSource
from .coordinator import Coordinator, Run
from .events import RunEvents, Send
from .models import ProviderPool
from .prompt import system_prompt, workspace_listing
from .summary import SUMMARY_PROMPT
from .titles import ask_for_title, asks_a_model, fallback_title
from .turn import CANCELED, ERROR, Turn, run_complete_body
from .usage import RunUsage, cost

log = logging.getLogger(__name__)


class Agent:
    """Everything a `Turn` needs from its workspace (`TurnDeps`), and the runs' lifetime."""

    def __init__(
        self,
        *,
        workspace_uri: str,
        root: Path,
        settings: Settings,
        store: Store,
        provider: Provider,
        small_provider: Callable[[], Provider | None],
        tools: Callable[[], dict[str, Tool]],
        extra_tools: Callable[[], Mapping[str, Tool]] = dict,
        session_tools: Callable[[str], Mapping[str, Tool]] | None = None,
        permissions: Permissions,
        send: Send,
        spawn: Callable[[Any], asyncio.Task[Any]],
        files: Files | None = None,
        diagnostics: DiagnosticsSource | None = None,
    ) -> None:
        self.workspace_uri = workspace_uri
        self.root = root
        self.settings = settings
        self.store = store
        self.models = ProviderPool(provider, spawn)
        self._small_provider = small_provider
        self._tool_factory = tools
        self._tools: dict[str, Tool] | None = None
        self._extra_tools = extra_tools  # the connected MCP servers' tools: they come and go
        self._session_tools = session_tools  # tools of one session only (an ACP client's MCP servers)
        self.permissions = permissions
        self.send = send
        self.spawn = spawn
        self.files = files  # the editor's buffers for the file tools (ACP fs/*); None: the disk
        self.diagnostics = diagnostics  # the editor's diagnostics (agent/diagnostics); None: not given
        self.coordinator = Coordinator(self.execute, self.complete_unstarted)
        self._system_prompts: dict[bool, str] = {}

    # ------------------------------------------------------------------ model
    def provider(self) -> Provider:
        return self.models.current

    @property
    def tools(self) -> dict[str, Tool]:
        """The built-in tools (built when the first turn needs them) and the MCP tools ready now."""
        extra = self._extra_tools()
        return {**self.builtin_tools, **extra} if extra else self.builtin_tools

    @property
    def builtin_tools(self) -> dict[str, Tool]:
        if self._tools is None:
            self._tools = self._tool_factory()
        return self._tools

    def prepare(self) -> None:
        """Build the tools now, while nothing streams: their modules take ~50 ms to import, which the
        first turn would otherwise spend on the event loop (every other session's stream waits)."""
        self.builtin_tools  # noqa: B018 - the property builds them

    def set_provider(self, provider: Provider) -> None:
        """Use another model from the next run on (a running turn keeps the one it started with)."""
        self.models.replace(provider)

    async def close_providers(self) -> None:
        await self.models.close()

    async def system_prompt(self, with_tools: bool) -> str:
        """Built once per workspace (it reads the context files); models without tools hear of none,
        and are told what the workspace holds, as it is now (they cannot look)."""
        if with_tools not in self._system_prompts:
            self._system_prompts[with_tools] = system_prompt(self.root, list(self.builtin_tools) if with_tools else [])
        if with_tools:
            return self._system_prompts[with_tools]
        return self._system_prompts[with_tools] + "\n" + await asyncio.to_thread(
            workspace_listing, self.root, frozenset(Path(self.settings.data_directory).parts[:1]))

    def tools_for(self, session_id: str) -> dict[str, Tool]:
        """The workspace's tools and those of the session's own MCP servers."""
        own = self._session_tools(session_id) if self._session_tools is not None else {}
        return {**self.tools, **own} if own else self.tools

    def tool_specs(self, session_id: str | None = None) -> list[ToolSpec]:
        tools = self.tools if session_id is None else self.tools_for(session_id)
        return [ToolSpec(t.name, t.description, t.parameters) for t in tools.values()]

    def context_nearly_full(self, session_id: str, info: ModelInfo) -> bool:
        """Crush's auto-summarize threshold: 20k tokens left on big windows, else 20%."""
        window = info.context_window
        session = self.store.get_session(session_id)
        if not window or session is None:
            return False
        threshold = 20_000 if window > 200_000 else 0.2 * window
        return window - (session.prompt_tokens + session.completion_tokens) <= threshold

    def take_steered(self, session_id: str) -> list[Run]:
        return self.coordinator.take_steered(session_id)

    # ------------------------------------------------------------------ runs
    def new_run(self, session_id: str, run_id: str, prompt: str, attachments: list[dict[str, Any]],
                mode: str = "queue", context: list[dict[str, Any]] | None = None) -> Run:
        events = RunEvents(self.send, self.workspace_uri, session_id, run_id, self.settings.stream_interval_ms)
        return Run(id=run_id, session_id=session_id, prompt=prompt, attachments=attachments,
                   events=events, mode=mode, context=context or [])

    def new_summary_run(self, session_id: str, run_id: str) -> Run:
        """A run that writes the session's summary (agent/summarize) instead of answering a prompt."""
        run = self.new_run(session_id, run_id, SUMMARY_PROMPT, [])
        run.summarize = True
        return run

    async def execute(self, run: Run) -> None:
        """Play one run to its run_complete, whatever happens."""
        try:
            await self.models.ready()
        except asyncio.CancelledError:
            run.canceled = True  # the turn ends canceled at once, its prompt stored, as any cancel
        turn = Turn(self, run, self.models.take())
        try:
            await turn.play()
        except asyncio.CancelledError:
            await self._settle(turn.end_canceled(), turn)
        except ProviderError as err:
            await self._settle(turn.end_with_error(err.message, err.code, err.retryable), turn)
        except Exception as err:
            log.exception("run %s failed", run.id)
            await self._settle(turn.end_with_error(f"{type(err).__name__}: {err}", "internal", False), turn)
        finally:
            turn.complete()
            session = self.store.get_session(run.session_id)
            if session is not None:
                self.session_updated(session, run.events, busy=self.coordinator.runs_after_active(run.session_id))
            self.models.release(turn.provider)

    @staticmethod
    async def _settle(ending: Any, turn: Turn) -> None:
        """Store a turn's ending even if the run is cancelled again meanwhile."""
        try:
            await ending
        except asyncio.CancelledError:
            log.warning("run %s was cancelled again while storing its end", turn.run.id)
        except Exception as exc:
            log.exception("run %s: storing its end failed", turn.run.id)
            message = exc.message if isinstance(exc, CrushError) else f"{type(exc).__name__}: {exc}"
            turn.events.emit(turn.agent_error(message, "internal", False, will_retry=False))
            if turn.finish_reason not in (CANCELED, ERROR):
                turn.finish_reason = ERROR

    def complete_unstarted(self, run: Run) -> None:
        """A run dropped from the queue: canceled, nothing stored."""
        run.events.emit_soon(run_complete_body("", CANCELED, RunUsage()))

    async def history(self, session_id: str) -> list[Message]:
        """The messages the model sees: from the last summary on (as a user message)."""
        messages = await self.store.history(session_id)
        session = self.store.sessions[session_id]
        if session.summary_message_id:
            for index in range(len(messages) - 1, -1, -1):
                if messages[index].id == session.summary_message_id:
                    # A copy: the stored message stays the assistant's.
                    messages = [attrs.evolve(messages[index], role="user"), *messages[index + 1:]]
                    break
        return messages

    # ------------------------------------------------------------------ usage and titles
    async def account(self, session_id: str, usage: Usage, events: RunEvents, info: ModelInfo) -> RunUsage:
        """Add one model call's usage and cost to the session (Crush keeps the latest context size)."""
        call_cost = cost(usage, info)
        session = self.store.sessions[session_id]
        if usage.input_tokens or usage.cache_read_tokens:
            session.prompt_tokens = usage.input_tokens + usage.cache_read_tokens
        if usage.output_tokens:
            session.completion_tokens = usage.output_tokens
        session.cost += call_cost
        self.store.save_session(session)
        self.session_updated(session, events, busy=True)
        return RunUsage(usage.input_tokens, usage.output_tokens, call_cost)

    def session_updated(self, session: Session, events: RunEvents | None, busy: bool | None = None) -> None:
        if busy is None:
            busy = self.coordinator.is_busy(session.id)
        body = {"type": "session_updated", "session": session_to_wire(session, busy)}
        if events is not None and not events.completed:
            events.emit(body)
        else:
            self.send({**body, "workspace": self.workspace_uri, "sessionId": session.id})

    async def title_session(self, session: Session, prompt: str, events: RunEvents) -> None:
        """Name a session after its first prompt: by a model in the background, else its start."""
        if not asks_a_model(self.models.current):
            session.title = fallback_title(prompt)
            await self._save_title(session, events)
            return
        self.spawn(self._generate_title(session, prompt))

    async def _save_title(self, session: Session, events: RunEvents | None) -> None:
        self.store.save_session(session)
        self.session_updated(session, events)

    async def _generate_title(self, session: Session, prompt: str) -> None:
        small = self._small_provider()
        provider = small or self.models.take()
        try:
            title, usage = await ask_for_title(provider, prompt)
        finally:
            if small is not None:
                await small.aclose()  # made for this title alone: keep no connection open
            else:
                self.models.release(provider)
        if self.store.get_session(session.id) is None:
            return  # deleted meanwhile: saving would bring it back
        if session.title == DEFAULT_TITLE:  # a session/rename meanwhile wins
            session.title = title
        session.prompt_tokens += usage.input_tokens
        session.completion_tokens += usage.output_tokens
        session.cost += cost(usage, provider.info)
        await self._save_title(session, None)
