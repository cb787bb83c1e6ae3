"""`scripted`: plays a script of responses (PROTOCOL section 7). Never retries.

For each model call the first response whose `when` is a substring of the
run's prompt (or absent) and whose `step` equals the call's step (or is
absent) is played, event by event.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import attrs

from ..protocol.convert import STRICT, describe_structure_error
from ..protocol.errors import AgentNotInitialized
from ..settings import ModelConfig
from ..settings.files import read_regular_file
from .base import (
    END_TURN,
    TOOL_USE,
    Finish,
    ModelCall,
    ModelInfo,
    ProviderError,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallRequest,
    Usage,
)

FinishReason = Literal["end_turn", "max_tokens", "canceled", "error", "content_filter", "unknown"]


@attrs.define
class ScriptUsage:
    inputTokens: int = 0  # noqa: N815 - the script's own spelling
    outputTokens: int = 0  # noqa: N815


@attrs.define
class ScriptToolCall:
    name: str
    input: dict[str, Any] = attrs.Factory(dict)


@attrs.define
class ScriptEvent:
    text: str | None = None
    chunkSize: int | None = None  # noqa: N815
    delayMs: float | None = None  # noqa: N815
    reasoning: str | None = None
    toolCall: ScriptToolCall | None = None  # noqa: N815
    sleepMs: float | None = None  # noqa: N815
    error: str | None = None
    retryable: bool | None = None
    echo: bool | None = None
    finish: FinishReason | None = None
    usage: ScriptUsage | None = None


@attrs.define
class ScriptResponse:
    events: list[ScriptEvent]
    when: str | None = None
    step: int | None = None


@attrs.define
class Script:
    responses: list[ScriptResponse]


def read_script(script_path: str, workspace_root: Path) -> Any:
    """The JSON a `scriptPath` holds (relative to the workspace). Never blocks on a FIFO or device;
    may wait on a slow filesystem, so `agent/setModel` reads it in a thread."""
    path = Path(script_path)
    if not path.is_absolute():
        path = workspace_root / path
    try:
        return json.loads(read_regular_file(path))
    except (OSError, ValueError) as exc:  # UnreadableFile and JSON errors are ValueErrors
        raise AgentNotInitialized(f"scripted model: cannot read scriptPath {str(path)!r}: {exc}") from exc


def load_script(config: ModelConfig, workspace_root: Path) -> Script:
    raw: Any = config.script
    if raw is None and config.script_path:
        raw = read_script(config.script_path, workspace_root)
    if raw is None:
        raise AgentNotInitialized("scripted model: give model.script or model.scriptPath")
    try:
        return STRICT.structure(raw, Script)
    except Exception as exc:
        raise AgentNotInitialized(f"scripted model: invalid script: {describe_structure_error(exc)}") from exc


class ScriptedProvider:
    max_retries = 0

    def __init__(self, config: ModelConfig, script: Script) -> None:
        self.info = ModelInfo(
            provider="scripted", model=config.model or "scripted", name="Scripted",
            context_window=config.context_window or 0, supports_tools=True,
        )
        self.script = script
        self._tool_calls = 0

    def _pick(self, call: ModelCall) -> ScriptResponse:
        for response in self.script.responses:
            if response.when is not None and response.when not in call.prompt:
                continue
            if response.step is not None and response.step != call.step:
                continue
            return response
        raise ProviderError(
            f"scripted model: no response matches prompt {call.prompt!r} at step {call.step}",
            code="internal", retryable=False,
        )

    async def stream(self, call: ModelCall) -> AsyncIterator[StreamEvent]:
        response = self._pick(call)
        finish = END_TURN
        called_tools = False
        for event in response.events:
            if event.text is not None:
                size = event.chunkSize or len(event.text) or 1
                for i in range(0, max(len(event.text), 1), size):
                    if event.delayMs:
                        await asyncio.sleep(event.delayMs / 1000)
                    elif i:  # one loop turn per chunk, as a network stream arrives: a long text
                        await asyncio.sleep(0)  # never holds the loop (an ack, the other sessions) at once
                    chunk = event.text[i : i + size]
                    if chunk:
                        yield TextDelta(chunk)
            if event.reasoning is not None:
                yield ReasoningDelta(event.reasoning)
            if event.toolCall is not None:
                self._tool_calls += 1
                called_tools = True
                yield ToolCallRequest(
                    id=f"call_{self._tool_calls}", name=event.toolCall.name, input=event.toolCall.input
                )
            if event.sleepMs:
                await asyncio.sleep(event.sleepMs / 1000)
            if event.error is not None:
                raise ProviderError(event.error, code="internal", retryable=bool(event.retryable))
            if event.echo:
                yield TextDelta(call.prompt)
            if event.usage is not None:
                yield Usage(input_tokens=event.usage.inputTokens, output_tokens=event.usage.outputTokens)
            if event.finish is not None:
                finish = event.finish
        yield Finish(TOOL_USE if called_tools else finish)

    async def aclose(self) -> None:
        pass


def create(config: ModelConfig, workspace_root: Path) -> ScriptedProvider:
    return ScriptedProvider(config, load_script(config, workspace_root))
