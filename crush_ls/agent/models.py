"""The models of one workspace's agent: the current one, and the replaced ones still in use.

A model replaced by `agent/setModel` keeps serving the turns (and titles)
that started with it; once none uses it, it is closed. A replaced model
holds an HTTP connection pool (or a loaded GGUF): keeping each one until the
workspace closes would grow with every `agent/setModel`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..providers.base import Provider

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class ProviderPool:
    def __init__(self, current: Provider, spawn: Spawn) -> None:
        self.current = current
        self._spawn = spawn
        self._retired: list[Provider] = []  # replaced, closed once nothing uses them
        self._in_use: list[Provider] = []  # the providers of running turns and titles (repeats allowed)
        self._switching: asyncio.Future[Any] | None = None

    def hold_until(self, switching: asyncio.Future[Any]) -> None:
        """Runs that start before `switching` ends wait for it: a model switch that must first
        read a file (off the event loop) still takes effect in the order requests arrived."""
        self._switching = switching
        switching.add_done_callback(_retrieved)  # a caller that never awaits it must not leave an error unseen

    async def ready(self) -> None:
        """Return once no model switch is under way (at once when none is)."""
        if self._switching is not None and not self._switching.done():
            await asyncio.wait({self._switching})

    def replace(self, provider: Provider) -> None:
        """Use another model from the next run on (a running turn keeps the one it started with)."""
        if self.current is not None:
            self._retired.append(self.current)
        self.current = provider
        self._close_unused()

    def take(self) -> Provider:
        """The current model, marked in use until `release`."""
        self._in_use.append(self.current)
        return self.current

    def release(self, provider: Provider) -> None:
        """A turn or title is done with `provider`: close replaced ones nobody uses any more."""
        self._in_use.remove(provider)
        self._close_unused()

    def _close_unused(self) -> None:
        for unused in [p for p in self._retired if p not in self._in_use]:
            self._retired.remove(unused)
            self._spawn(unused.aclose())

    async def close(self) -> None:
        for provider in [*self._retired, *([self.current] if self.current is not None else [])]:
            await provider.aclose()
        self._retired.clear()


def _retrieved(switching: asyncio.Future[Any]) -> None:
    if not switching.cancelled() and switching.exception() is not None:
        log.info("model switch failed: %s", switching.exception())
