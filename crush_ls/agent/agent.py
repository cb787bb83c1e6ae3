"""The agent of one workspace: runs turns, keeps session usage, names sessions.

`Agent` is transport-free: it gets a `send` for notifications, the store,
the provider, the tools and the permission service, and it is driven by its
`Coordinator` (accept, queue, steer, cancel). Tests can use it without a
client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings
from ..permissions import Permissions
from ..protocol.encode import session_to_wire, usage_to_wire
from ..protocol.errors import CrushError
from ..providers.base import ModelCall, ModelInfo, Provider, ProviderError, TextDelta, ToolSpec, Usage
from ..storage import DEFAULT_TITLE, Message, Session, Store
from ..tools import Tool
from ..tools.base import Files
from .coordinator import Coordinator, Run
from .events import RunEvents, Send
from .prompt import system_prompt
from .turn import CANCELED, ERROR, RunUsage, Turn

log = logging.getLogger(__name__)

TITLE_PROMPT = (
    "Generate a concise title (at most 8 words, no quotes, no punctuation at the end) "
    "for a conversation that starts with this message:\n\n{prompt}"
)
TITLE_FALLBACK_CHARS = 50
# Harness providers get the prompt's start as title: deterministic, no extra model call.
# So does the embedded model: its titles answer the prompt instead, and the call
# would hold the one llama.cpp context (and evict the chat's cached prompt)
# while the user waits for the answer.
NO_TITLE_CALL = frozenset({"echo", "scripted", "local"})


def fallback_title(prompt: str) -> str:
    text = " ".join(prompt.split())
    return text[:TITLE_FALLBACK_CHARS] or "New Session"


class Agent:
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
        extra_tools: Callable[[], dict[str, Tool]] = dict,
        session_tools: Callable[[str], dict[str, Tool]] | None = None,
        permissions: Permissions,
        send: Send,
        spawn: Callable[[Any], asyncio.Task[Any]],
        files: Files | None = None,
    ) -> None:
        self.workspace_uri = workspace_uri
        self.root = root
        self.settings = settings
        self.store = store
        self._provider = provider
        self._small_provider = small_provider
        self._make_tools = tools
        self._tools: dict[str, Tool] | None = None
        self._extra_tools = extra_tools  # the connected MCP servers' tools: they come and go
        self._session_tools = session_tools  # tools of one session only (an ACP client's MCP servers)
        self.permissions = permissions
        self.send = send
        self.spawn = spawn
        self.files = files  # the editor's buffers for the file tools (ACP fs/*); None: the disk
        self.coordinator = Coordinator(self.execute, self.complete_unstarted)
        self._system_prompts: dict[bool, str] = {}
        self._retired: list[Provider] = []  # replaced by agent/setModel, closed once no turn uses them
        self._in_use: list[Provider] = []  # the providers of running turns and titles (repeats allowed)

    # ------------------------------------------------------------------ model
    def provider(self) -> Provider:
        return self._provider

    @property
    def tools(self) -> dict[str, Tool]:
        """The built-in tools (built when the first turn needs them) and the MCP tools ready now."""
        extra = self._extra_tools()
        return {**self.builtin_tools, **extra} if extra else self.builtin_tools

    @property
    def builtin_tools(self) -> dict[str, Tool]:
        if self._tools is None:
            self._tools = self._make_tools()
        return self._tools

    def set_provider(self, provider: Provider) -> None:
        """Use another model from the next run on (a running turn keeps the one it started with)."""
        if self._provider is not None:
            self._retired.append(self._provider)
        self._provider = provider
        self.release_provider(None)

    def release_provider(self, provider: Provider | None) -> None:
        """A turn or title is done with `provider`: close replaced ones nobody uses any more.

        A replaced model holds an HTTP connection pool (or a loaded GGUF); keeping
        each one until the workspace closes grows with every agent/setModel.
        """
        if provider is not None:
            self._in_use.remove(provider)
        for unused in [p for p in self._retired if p not in self._in_use]:
            self._retired.remove(unused)
            self.spawn(unused.aclose())

    async def close_providers(self) -> None:
        for provider in [*self._retired, *([self._provider] if self._provider is not None else [])]:
            await provider.aclose()
        self._retired.clear()

    def system_prompt(self, with_tools: bool) -> str:
        """Built once per workspace (it reads the context files); models without tools hear of none."""
        if with_tools not in self._system_prompts:
            self._system_prompts[with_tools] = system_prompt(self.root, list(self.builtin_tools) if with_tools else [])
        return self._system_prompts[with_tools]

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

    # ------------------------------------------------------------------ runs
    def new_run(self, session_id: str, run_id: str, prompt: str, attachments: list[dict[str, Any]],
                mode: str = "queue") -> Run:
        events = RunEvents(self.send, self.workspace_uri, session_id, run_id, self.settings.stream_interval_ms)
        return Run(id=run_id, session_id=session_id, prompt=prompt, attachments=attachments,
                   events=events, mode=mode)

    async def execute(self, run: Run) -> None:
        """Play one run to its run_complete, whatever happens."""
        turn = Turn(self, run)
        self._in_use.append(turn.provider)
        try:
            await turn.play()
        except asyncio.CancelledError:
            await self._settle(turn.end_canceled(), turn)
        except ProviderError as err:
            await self._settle(turn.end_with_error(err.message, err.code, err.retryable), turn)
        except Exception as err:  # noqa: BLE001 - a bug must still end the run properly
            log.exception("run %s failed", run.id)
            await self._settle(turn.end_with_error(f"{type(err).__name__}: {err}", "internal", False), turn)
        finally:
            turn.complete()
            session = self.store.get_session(run.session_id)
            if session is not None:
                self.session_updated(session, run.events, busy=self.coordinator.runs_after_active(run.session_id))
            self.release_provider(turn.provider)

    @staticmethod
    async def _settle(ending: Any, turn: Turn) -> None:
        """Store a turn's ending even if the run is cancelled again meanwhile."""
        try:
            await ending
        except asyncio.CancelledError:
            log.warning("run %s was cancelled again while storing its end", turn.run.id)
        except Exception as exc:  # noqa: BLE001 - the run still ends; its client hears why its end is missing
            log.exception("run %s: storing its end failed", turn.run.id)
            message = exc.message if isinstance(exc, CrushError) else f"{type(exc).__name__}: {exc}"
            turn.events.emit(turn.agent_error(message, "internal", False, will_retry=False))
            if turn.finish_reason not in (CANCELED, ERROR):
                turn.finish_reason = ERROR

    def complete_unstarted(self, run: Run) -> None:
        """A run dropped from the queue: canceled, nothing stored."""
        run.events.emit_soon({
            "type": "run_complete", "text": "", "finishReason": CANCELED, "usage": usage_to_wire(),
        })

    async def history(self, session_id: str) -> list[Message]:
        """The messages the model sees: from the last summary on (as a user message)."""
        messages = await self.store.list_messages(session_id)
        session = self.store.sessions[session_id]
        if session.summary_message_id:
            for index, message in enumerate(messages):
                if message.id == session.summary_message_id:
                    messages = messages[index:]
                    messages[0].role = "user"
                    break
        return messages

    # ------------------------------------------------------------------ usage and titles
    async def account(self, session_id: str, usage: Usage, events: RunEvents, info: ModelInfo) -> RunUsage:
        """Add one model call's usage and cost to the session (Crush keeps the latest context size)."""
        cost = (
            usage.input_tokens * info.cost_per_1m_in
            + usage.output_tokens * info.cost_per_1m_out
            + usage.cache_write_tokens * info.cost_per_1m_in_cached
            + usage.cache_read_tokens * info.cost_per_1m_out_cached
        ) / 1e6
        session = self.store.sessions[session_id]
        if usage.input_tokens or usage.cache_read_tokens:
            session.prompt_tokens = usage.input_tokens + usage.cache_read_tokens
        if usage.output_tokens:
            session.completion_tokens = usage.output_tokens
        session.cost += cost
        self.store.save_session(session)
        self.session_updated(session, events, busy=True)
        return RunUsage(usage.input_tokens, usage.output_tokens, cost)

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
        if self._provider.info.provider in NO_TITLE_CALL:
            session.title = fallback_title(prompt)
            await self._save_title(session, events)
            return
        self.spawn(self._generate_title(session, prompt))

    async def _save_title(self, session: Session, events: RunEvents | None) -> None:
        self.store.save_session(session)
        self.session_updated(session, events)

    async def _generate_title(self, session: Session, prompt: str) -> None:
        small = self._small_provider()
        provider = small or self._provider
        if small is None:
            self._in_use.append(provider)
        try:
            title, usage = await self._ask_for_title(provider, prompt)
        finally:
            if small is not None:
                await small.aclose()  # made for this title alone: keep no connection open
            else:
                self.release_provider(provider)
        if self.store.get_session(session.id) is None:
            return  # deleted meanwhile: saving would bring it back
        if session.title == DEFAULT_TITLE:  # a session/rename meanwhile wins
            session.title = title[:100] if title else fallback_title(prompt)
        info = provider.info
        session.prompt_tokens += usage.input_tokens
        session.completion_tokens += usage.output_tokens
        session.cost += (usage.input_tokens * info.cost_per_1m_in + usage.output_tokens * info.cost_per_1m_out) / 1e6
        await self._save_title(session, None)

    @staticmethod
    async def _ask_for_title(provider: Provider, prompt: str) -> tuple[str, Usage]:
        """The model's title ("" when it failed) and the call's usage."""
        title = ""
        usage = Usage()
        try:
            call = ModelCall(system="You write short titles.", messages=[{
                "role": "user", "parts": [{"type": "text", "text": TITLE_PROMPT.format(prompt=prompt[:2000])}],
            }], tools=[], prompt=prompt, max_tokens=40)
            async with asyncio.timeout(30):
                async for event in provider.stream(call):
                    if isinstance(event, TextDelta):
                        title += event.text
                    elif isinstance(event, Usage):
                        usage = event
        except (Exception, TimeoutError) as exc:  # noqa: BLE001 - a failed title is not an agent_error
            log.info("title generation failed, using the prompt: %s", exc)
            title = ""
        return " ".join(title.replace("<think>", "").replace("</think>", "").split()).strip("\"'"), usage
