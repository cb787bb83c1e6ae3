"""Helpers shared by the provider tests: build calls, collect a stream, expect a failure."""

from __future__ import annotations

from typing import Any

import pytest

from crush_ls.providers.base import ModelCall, ProviderError


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"type": "text", "text": text}]}


def call_with(prompt: str = "hi", **kwargs: Any) -> ModelCall:
    kwargs.setdefault("system", "You are a test.")
    kwargs.setdefault("messages", [user(prompt)])
    kwargs.setdefault("tools", [])
    return ModelCall(prompt=prompt, **kwargs)


async def collect(provider: Any, call: ModelCall) -> list[Any]:
    """Every event of one call; the provider is closed afterwards."""
    try:
        return [event async for event in provider.stream(call)]
    finally:
        await provider.aclose()


async def failure(provider: Any, call: ModelCall | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await collect(provider, call or call_with())
    return info.value
