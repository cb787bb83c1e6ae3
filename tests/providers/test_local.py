"""The embedded `local` provider with the real SmolLM2-135M model (no fakes).

The model loads once per test process (about a second); each generation
here is short. Cancel latency is measured from `task.cancel()` to the
stream having ended and its worker thread having exited.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="the local model needs `pip install 'crush-ls[local]'`")

from crush_ls.protocol.errors import AgentNotInitialized
from crush_ls.providers import create_provider
from crush_ls.providers.base import END_TURN, MAX_TOKENS, Finish, TextDelta, Usage
from crush_ls.providers.local import (
    EMBEDDED_MODEL_ID,
    SHORT_SYSTEM,
    LocalProvider,
    chat_messages,
    embedded_gguf,
    fit_to_window,
)
from crush_ls.settings import ModelConfig
from tests.providers.provider_testing import call_with, collect, failure, user

CANCEL_LIMIT_S = 0.100
WORKER_NAME = "crush-ls-local-model"


def local(**config: object) -> LocalProvider:
    provider = create_provider(ModelConfig(provider="local", **config), Path.cwd())  # type: ignore[arg-type]
    assert isinstance(provider, LocalProvider)
    return provider


def workers_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WORKER_NAME]


async def cancel_after(provider: LocalProvider, call_kwargs: dict, deltas_before_cancel: int) -> tuple[float, int]:
    """Stream a call, cancel it once `deltas_before_cancel` deltas arrived (0: right after it
    started); returns (seconds from cancel until the stream and its worker ended, deltas seen)."""
    seen = 0
    enough = asyncio.Event()

    async def consume() -> None:
        nonlocal seen
        async for event in provider.stream(call_with(**call_kwargs)):
            if isinstance(event, TextDelta):
                seen += 1
                if seen >= deltas_before_cancel:
                    enough.set()

    task = asyncio.create_task(consume())
    if deltas_before_cancel:
        await asyncio.wait_for(enough.wait(), 60)
    else:
        # The worker is prefilling a prompt that takes seconds; let it get into it.
        while not workers_alive():
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.2)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    elapsed = time.monotonic() - started
    assert workers_alive() == []
    print(f"cancel after {seen} deltas: stream and worker ended in {elapsed * 1000:.1f} ms")
    return elapsed, seen


async def test_a_short_prompt_streams_an_answer_and_ends_end_turn() -> None:
    provider = local()
    assert provider.info.supports_tools is False
    assert provider.info.model == EMBEDDED_MODEL_ID
    assert provider.info.context_window == 2048

    events = await collect(provider, call_with("What is the capital of France? Answer in one sentence."))

    deltas = [e for e in events if isinstance(e, TextDelta)]
    text = "".join(d.text for d in deltas)
    assert "Paris" in text
    assert events[-1] == Finish(END_TURN)
    usage = events[-2]
    assert isinstance(usage, Usage)
    assert usage.input_tokens > 10  # system prompt + question in the chat template
    assert 0 < usage.output_tokens <= 100
    assert len(deltas) > 1  # streamed token by token, not as one block
    assert workers_alive() == []


async def test_the_answer_stops_at_max_tokens() -> None:
    events = await collect(local(), call_with("Write a long story about a dragon.", max_tokens=8))
    assert events[-1] == Finish(MAX_TOKENS)
    assert events[-2].output_tokens == 8
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip()


async def test_a_cancel_during_generation_ends_the_stream_within_100ms() -> None:
    provider = local()
    elapsed, seen = await cancel_after(provider, {"prompt": "Write a long story about a dragon."}, 5)
    assert seen >= 5
    assert elapsed < CANCEL_LIMIT_S, f"cancel took {elapsed * 1000:.1f} ms"


async def test_a_cancel_during_a_long_prompt_aborts_its_processing_within_100ms() -> None:
    provider = local()
    await provider.model()
    # About 1500 prompt tokens take seconds to process on a laptop core; a
    # number makes the text unlike any cached prefix.
    long_prompt = f"Run {time.time()}. " + "Summarise the following notes about boats and rivers. " * 140
    elapsed, seen = await cancel_after(provider, {"prompt": long_prompt}, 0)
    assert seen == 0, "the answer had started: this did not cancel during prompt processing"
    assert elapsed < CANCEL_LIMIT_S, f"cancel took {elapsed * 1000:.1f} ms"
    # The model is usable right after an aborted decode.
    events = await collect(provider, call_with("Say hello.", max_tokens=16))
    assert isinstance(events[-1], Finish)


async def test_two_calls_at_once_take_turns_on_the_model() -> None:
    provider = local()
    first, second = await asyncio.gather(
        collect(provider, call_with("Name a colour.", max_tokens=12)),
        collect(provider, call_with("Name a fruit.", max_tokens=12)),
    )
    for events in (first, second):
        assert isinstance(events[-1], Finish)
        assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip()


async def test_a_long_history_drops_its_oldest_messages_to_fit_the_window() -> None:
    provider = local()
    model = await provider.model()
    history = []
    for i in range(40):
        history.append(user(f"Message {i}: " + "tell me more about rivers " * 20))
        history.append({"role": "assistant", "parts": [{"type": "text", "text": "Rivers flow to the sea. " * 15}]})
    history.append(user("Last question: what is 2 + 2?"))
    call = call_with("Last question: what is 2 + 2?", messages=history)

    tokens = fit_to_window(model, call.system, chat_messages(call), reserve=512)

    assert model.n_ctx - 512 - 300 < len(tokens) <= model.n_ctx - 512  # only as much as needed goes
    prompt = model.llama.detokenize(tokens, special=True).decode()
    assert prompt.rstrip().endswith("Last question: what is 2 + 2?<|im_end|>\n<|im_start|>assistant")
    assert "You are a test." in prompt  # the system prompt is kept
    assert "Message 0:" not in prompt
    assert prompt.split("<|im_start|>")[2].startswith("user\nMessage")  # the kept history starts with a user's


async def test_a_system_prompt_too_long_for_the_window_is_replaced_by_a_short_one() -> None:
    model = await local().model()
    call = call_with("Hi.", system="Project rules: always be nice. " * 400)

    tokens = fit_to_window(model, call.system, chat_messages(call), reserve=256)

    prompt = model.llama.detokenize(tokens, special=True).decode()
    assert SHORT_SYSTEM in prompt and "Project rules" not in prompt


async def test_a_message_longer_than_the_window_is_a_context_window_error() -> None:
    error = await failure(local(), call_with("tell me about rivers " * 1000))
    assert error.code == "context_window_exceeded"
    assert not error.retryable


def test_tool_calls_and_results_of_a_history_become_text() -> None:
    call = call_with(messages=[
        user("list files"),
        {"role": "assistant", "parts": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_call", "id": "c1", "name": "ls", "input": {"path": "."}, "status": "completed"},
            {"type": "finish", "reason": "tool_use", "time": "2026-01-01T00:00:00Z"},
        ]},
        {"role": "tool", "parts": [
            {"type": "tool_result", "toolCallId": "c1", "name": "ls", "content": "a.py\nb.py", "isError": False},
        ]},
        {"role": "assistant", "parts": [{"type": "text", "text": "There are two files."}]},
        user("thanks"),
    ])
    assert chat_messages(call) == [
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": 'Let me look.\n[called tool ls with {"path": "."}]'},
        {"role": "user", "content": "[result of tool ls]\na.py\nb.py"},
        {"role": "assistant", "content": "There are two files."},
        {"role": "user", "content": "thanks"},
    ]


async def test_model_may_be_the_path_of_a_gguf_file(tmp_path: Path) -> None:
    gguf = embedded_gguf()
    assert gguf is not None
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.gguf").symlink_to(gguf)
    provider = create_provider(ModelConfig(provider="local", model="models/tiny.gguf"), tmp_path)
    assert provider.info.model == "models/tiny.gguf"
    assert provider.info.name == "tiny"
    events = await collect(provider, call_with("Say hi.", max_tokens=8))
    assert isinstance(events[-1], Finish)


async def test_a_file_that_is_not_a_gguf_model_fails_the_call(tmp_path: Path) -> None:
    (tmp_path / "broken.gguf").write_bytes(b"not a model")
    provider = create_provider(ModelConfig(provider="local", model="broken.gguf"), tmp_path)
    error = await failure(provider, call_with("Hi."))
    assert error.code == "internal" and not error.retryable
    assert "broken.gguf" in error.message


def test_a_missing_gguf_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(AgentNotInitialized, match="nope.gguf"):
        create_provider(ModelConfig(provider="local", model="nope.gguf"), tmp_path)


def test_no_model_configured_means_the_local_model() -> None:
    assert create_provider(None, Path.cwd()).info.provider == "local"


def test_loading_and_generating_write_nothing_to_stdout() -> None:
    """stdout carries the protocol: llama.cpp must not print there, even at the fd level."""
    script = (
        "import asyncio\n"
        "from pathlib import Path\n"
        "from crush_ls.settings import ModelConfig\n"
        "from crush_ls.providers import create_provider\n"
        "from tests.providers.provider_testing import call_with, collect\n"
        "p = create_provider(ModelConfig(provider='local'), Path('.'))\n"
        "events = asyncio.run(collect(p, call_with('Say hi.', max_tokens=8)))\n"
        "import sys; print(len(events), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""


# --- through the protocol: the default model of a server with none configured ---------------


async def test_without_a_configured_model_the_local_model_answers_and_a_cancel_ends_it_quickly(start) -> None:
    client = await start({"streamIntervalMs": 0})  # no model here, none in crush.json
    models = await client.call("agent/models", {"workspace": client.ws_uri})
    assert models["current"]["provider"] == "local"
    assert models["current"]["supportsTools"] is False
    session = await client.new_session()

    run = (await client.send(session, "What is the capital of France? Answer in one sentence."))["runId"]
    done = await client.completed(run, timeout=60)

    assert done["finishReason"] == "end_turn"
    assert "Paris" in done["text"]
    assert client.text_of(run) == done["text"]
    assert done["usage"]["inputTokens"] > 10 and done["usage"]["outputTokens"] > 0

    # The same server (model loaded, history cached): a cancel mid-answer.
    run = (await client.send(session, "Now write a long story about a dragon."))["runId"]
    await client.wait_for(lambda n: n["type"] == "text_delta" and n.get("runId") == run, timeout=60)
    started = time.monotonic()
    canceled = await client.call("agent/cancel", {"workspace": client.ws_uri, "sessionId": session})
    done = await client.completed(run)
    elapsed = time.monotonic() - started

    print(f"protocol cancel -> run_complete: {elapsed * 1000:.1f} ms")
    assert canceled["canceled"] == 1
    assert done["finishReason"] == "canceled"
    assert done["text"]  # the answer so far is kept
    assert elapsed < 0.25, f"cancel took {elapsed * 1000:.1f} ms"
