"""Session titles: asked of a model in the background, or the first prompt's start."""

from __future__ import annotations

import asyncio
import logging

from ..providers.base import ModelCall, Provider, TextDelta, Usage

log = logging.getLogger(__name__)

TITLE_PROMPT = (
    "Generate a concise title (at most 8 words, no quotes, no punctuation at the end) "
    "for a conversation that starts with this message:\n\n{prompt}"
)
TITLE_FALLBACK_CHARS = 50
TITLE_MAX_CHARS = 100
TITLE_TIMEOUT_S = 30
# Harness providers get the prompt's start as title: deterministic, no extra model call.
# So does the embedded model: its titles answer the prompt instead, and the call
# would hold the one llama.cpp context (and evict the chat's cached prompt)
# while the user waits for the answer.
NO_TITLE_CALL = frozenset({"echo", "scripted", "local"})


def fallback_title(prompt: str) -> str:
    text = " ".join(prompt.split())
    return text[:TITLE_FALLBACK_CHARS] or "New Session"


def asks_a_model(provider: Provider) -> bool:
    return provider.info.provider not in NO_TITLE_CALL


async def ask_for_title(provider: Provider, prompt: str) -> tuple[str, Usage]:
    """The model's title (the prompt's start when it failed) and the call's usage."""
    title = ""
    usage = Usage()
    try:
        call = ModelCall(system="You write short titles.", messages=[{
            "role": "user", "parts": [{"type": "text", "text": TITLE_PROMPT.format(prompt=prompt[:2000])}],
        }], tools=[], prompt=prompt, max_tokens=40)
        async with asyncio.timeout(TITLE_TIMEOUT_S):
            async for event in provider.stream(call):
                if isinstance(event, TextDelta):
                    title += event.text
                elif isinstance(event, Usage):
                    usage = event
    except (Exception, TimeoutError) as exc:  # noqa: BLE001 - a failed title is not an agent_error
        log.info("title generation failed, using the prompt: %s", exc)
        title = ""
    title = " ".join(title.replace("<think>", "").replace("</think>", "").split()).strip("\"'")
    return (title[:TITLE_MAX_CHARS] if title else fallback_title(prompt)), usage
