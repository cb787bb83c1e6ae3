"""`echo`: streams the prompt back word by word (PROTOCOL section 7). Never retries."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

from ..settings import ModelConfig
from .base import END_TURN, Finish, ModelCall, ModelInfo, StreamEvent, TextDelta, Usage

_WORDS = re.compile(r"\S+\s*|\s+")


class EchoProvider:
    max_retries = 0

    def __init__(self, config: ModelConfig) -> None:
        self.info = ModelInfo(
            provider="echo", model=config.model or "echo", name="Echo",
            context_window=config.context_window or 0, supports_tools=False,
        )
        self.delay = (config.delay_ms or 0) / 1000
        self.repeat = max(1, config.repeat)

    async def stream(self, call: ModelCall) -> AsyncIterator[StreamEvent]:
        # Repetitions are separated by a space: "a b" twice is "a b a b".
        once = _WORDS.findall(call.prompt)
        words = [w for i in range(self.repeat) for w in ([" "] if i and once else []) + once]
        for word in words:
            if self.delay:
                await asyncio.sleep(self.delay)
            yield TextDelta(word)
        yield Usage(input_tokens=len(call.prompt.split()), output_tokens=len(words))
        yield Finish(END_TURN)

    async def aclose(self) -> None:
        pass


def create(config: ModelConfig, workspace_root: Path) -> EchoProvider:
    return EchoProvider(config)
