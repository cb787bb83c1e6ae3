"""Usage and cost, session titles, context files and summaries, through the real server.

The model is the `openai` provider talking to a fake Chat Completions server
(tests/providers/fake_openai.py), so what the server sent is asserted on the
requests the fake received. PROTOCOL sections 2 (agent/summarize) and 3
(usage, titles).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import AgentClient, read_db
from tests.e2e.expect import refused_with
from tests.e2e.runs import assert_runs_end_once, barrier, finish_reason, roles, run, stored, text
from tests.processes import open_connections
from tests.providers import fake_anthropic as anthropic
from tests.providers import fake_openai as openai
from tests.providers.fake_vendor import FakeVendorServer, Hold, Status

KEY = "sk-titles-0123456789"
PRICES = {"costPer1mIn": 1000, "costPer1mOut": 2000, "costPer1mOutCached": 500}
SUMMARY_PROMPT = "Provide a detailed summary of our conversation above."
CONTINUATION = "The previous session was interrupted because it got too long, the initial user request was: `{}`"


def model(server: FakeVendorServer, **extra: Any) -> dict[str, Any]:
    return {"provider": "openai", "model": "gpt-test", "baseUrl": server.base_url, "apiKey": KEY, **extra}


def cost(input_tokens: int, output_tokens: int, cached: int = 0, prices: dict[str, float] = PRICES) -> float:
    return (input_tokens * prices["costPer1mIn"] + output_tokens * prices["costPer1mOut"]
            + cached * prices.get("costPer1mOutCached", 0)) / 1e6


def near(a: float, b: float) -> bool:
    return abs(a - b) < 1e-9


async def get_session(client: AgentClient, session_id: str) -> dict[str, Any]:
    return await client.call("session/get", {"workspace": client.ws_uri, "sessionId": session_id})


async def summarize(client: AgentClient, session_id: str) -> dict[str, Any]:
    return await client.call("agent/summarize", {"workspace": client.ws_uri, "sessionId": session_id})


async def requests_arrived(server: FakeVendorServer, count: int) -> None:
    await asyncio.to_thread(server.wait_for_requests, count)


def user_texts(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


def conversation(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(role, content) of a request's messages after the system prompt."""
    return [(m["role"], m.get("content")) for m in body["messages"] if m["role"] != "system"]


def with_cached_usage(events: list[dict[str, Any]], prompt: int, completion: int, cached: int) -> list[dict[str, Any]]:
    return [*events[:-1], openai.chunk(usage=openai.usage(prompt, completion, cached_tokens=cached))]


# ---------------------------------------------------------------------- usage and cost
async def test_usage_per_step_run_and_session(start, workspace):
    (workspace / "a.txt").write_text("alpha\n")
    tool_step = with_cached_usage(openai.tool_call_stream("view", json.dumps({"file_path": "a.txt"})),
                                  prompt=300, completion=20, cached=100)
    responses = [openai.text_stream("warm", prompt_tokens=10, completion_tokens=2),
                 tool_step, openai.text_stream("it says alpha", prompt_tokens=400, completion_tokens=30)]
    with openai.FakeOpenAI(responses) as server:
        client = await start({"model": model(server, **PRICES)})
        session = await client.new_session()
        await run(client, session, "warm up")
        await client.wait_for(lambda n: n["type"] == "session_updated" and n["session"]["title"] == "Fake title")
        before = await get_session(client, session)
        run_id, done = await run(client, session, "what does a.txt say?")
        after = await get_session(client, session)
    step_usage = [{"inputTokens": 200, "outputTokens": 20, "cost": cost(200, 20, cached=100)},
                  {"inputTokens": 400, "outputTokens": 30, "cost": cost(400, 30)}]
    finished = [n for n in client.of_run(run_id) if n["type"] == "message_finished"]
    assert [n["finishReason"] for n in finished] == ["tool_use", "end_turn"]
    for note, expected in zip(finished, step_usage, strict=True):
        assert (note["usage"]["inputTokens"], note["usage"]["outputTokens"]) == \
            (expected["inputTokens"], expected["outputTokens"])
        assert near(note["usage"]["cost"], expected["cost"])
    assert (done["usage"]["inputTokens"], done["usage"]["outputTokens"]) == (600, 50)
    assert near(done["usage"]["cost"], cost(200, 20, cached=100) + cost(400, 30))
    # The session holds the latest context size (input + cached input, output), as Crush does, and all the cost.
    assert (after["promptTokens"], after["completionTokens"]) == (400, 30)
    assert near(after["cost"], before["cost"] + done["usage"]["cost"])
    updates = [n["session"] for n in client.of_run(run_id) if n["type"] == "session_updated"]
    assert [(u["promptTokens"], u["completionTokens"]) for u in updates[-2:]] == [(300, 20), (400, 30)]
    assert near(updates[-1]["cost"], after["cost"]) and updates[-1]["busy"] is True
    await barrier(client)
    last = [n for n in client.notes if n["type"] == "session_updated"][-1]
    assert last["session"]["busy"] is False and near(last["session"]["cost"], after["cost"])


# ---------------------------------------------------------------------- titles
async def test_the_first_prompt_is_titled_by_the_small_model(start):
    release = threading.Event()
    small_prices = {"costPer1mIn": 100, "costPer1mOut": 200}
    title = [Hold(release), *openai.text_stream("Parser refactoring", prompt_tokens=50, completion_tokens=6)]
    with openai.FakeOpenAI([openai.text_stream("first answer", prompt_tokens=10, completion_tokens=5),
                            openai.text_stream("second answer", prompt_tokens=20, completion_tokens=7)]) as main, \
            openai.FakeOpenAI([title], titles=None) as small:
        client = await start({"model": model(main, **PRICES),
                              "smallModel": {"provider": "openai", "model": "tiny-test", "baseUrl": small.base_url,
                                             "apiKey": KEY, **small_prices}})
        session = await client.new_session()
        untitled = (await get_session(client, session))["title"]
        first_run, first = await run(client, session, "please refactor the parser module")
        await requests_arrived(small, 1)  # the title is asked for while the run goes on
        assert (await get_session(client, session))["title"] == untitled
        release.set()
        titled = await client.wait_for(lambda n: n["type"] == "session_updated"
                                       and n["session"]["title"] == "Parser refactoring")
        after_title = await get_session(client, session)
        second_run, second = await run(client, session, "and now the lexer")
        final = await get_session(client, session)
    assert "runId" not in titled  # it came after the run ended
    (request,) = small.requests
    assert request["model"] == "tiny-test" and not request.get("tools")
    assert "please refactor the parser module" in json.dumps(request["messages"])
    assert main.title_requests == []
    # The title's usage goes to the session, not to the run.
    assert first["usage"] == {"inputTokens": 10, "outputTokens": 5, "cost": cost(10, 5)}
    assert (after_title["promptTokens"], after_title["completionTokens"]) == (10 + 50, 5 + 6)
    assert near(after_title["cost"], cost(10, 5) + cost(50, 6, prices=small_prices))
    # The second prompt does not retitle.
    assert second["finishReason"] == "end_turn" and len(small.requests) == 1
    assert final["title"] == "Parser refactoring"
    assert near(final["cost"], after_title["cost"] + second["usage"]["cost"])
    assert not [n for n in client.notes if n["type"] == "agent_error"]
    assert first_run != second_run


async def test_a_titles_cost_includes_its_cached_tokens(start):
    """The title is priced by the same formula as a turn: cache reads at the cached price."""
    small_prices = {"costPer1mIn": 100, "costPer1mOut": 200, "costPer1mOutCached": 50}
    title = with_cached_usage(openai.text_stream("Cached title"), prompt=500, completion=6, cached=400)
    with openai.FakeOpenAI([openai.text_stream("answer", prompt_tokens=10, completion_tokens=5)]) as main, \
            openai.FakeOpenAI([title], titles=None) as small:
        client = await start({"model": model(main, **PRICES),
                              "smallModel": {"provider": "openai", "model": "tiny-test", "baseUrl": small.base_url,
                                             "apiKey": KEY, **small_prices}})
        session = await client.new_session()
        await run(client, session, "a prompt whose title reads from the cache")
        await client.wait_for(lambda n: n["type"] == "session_updated" and n["session"]["title"] == "Cached title")
        titled = await get_session(client, session)
    title_cost = cost(100, 6, cached=400, prices=small_prices)
    assert title_cost > cost(100, 6, prices=small_prices)  # the cache price counts
    assert near(titled["cost"], cost(10, 5) + title_cost)


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_without_a_small_model_the_model_writes_the_title(start, vendor):
    vendor_module = openai if vendor == "openai" else anthropic
    fake = openai.FakeOpenAI if vendor == "openai" else anthropic.FakeAnthropic
    with fake([vendor_module.text_stream("answer")], titles="Named by the model") as server:
        client = await start({"model": model(server, provider=vendor)})
        session = await client.new_session()
        await run(client, session, "hello there")
        await client.wait_for(lambda n: n["type"] == "session_updated"
                              and n["session"]["title"] == "Named by the model")
    assert len(server.title_requests) == 1 and len(server.requests) == 1


async def test_a_failed_title_falls_back_to_the_prompt_start(start):
    prompt = "  explain   how the\nscheduler decides which task runs next when two are ready at once"
    with openai.FakeOpenAI([openai.text_stream("answer")]) as main, \
            openai.FakeOpenAI([Status(500, openai.error_body("title model down", "server_error"))],
                              titles=None) as small:
        client = await start({"model": model(main), "smallModel": model(small, model="tiny-test")})
        session = await client.new_session()
        _run_id, done = await run(client, session, prompt)
        fallback = " ".join(prompt.split())[:50]
        await client.wait_for(lambda n: n["type"] == "session_updated" and n["session"]["title"] == fallback)
        await barrier(client)
    assert done["finishReason"] == "end_turn"
    assert len(small.requests) == 1  # tried once, not retried
    assert not [n for n in client.notes if n["type"] == "agent_error"]  # a failed title is no agent_error


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="counts sockets through Linux /proc")
async def test_the_small_model_keeps_no_connection_open_after_a_title(start):
    with openai.FakeOpenAI([openai.text_stream("answer")] * 3) as main, \
            openai.FakeOpenAI(titles="Short title") as small:
        client = await start({"model": model(main), "smallModel": model(small, model="tiny-test")})
        for number in range(3):
            session = await client.new_session()
            await run(client, session, f"prompt number {number}")
            await client.wait_for(lambda n, s=session: n["type"] == "session_updated" and n["sessionId"] == s
                                  and n["session"]["title"] == "Short title")
        small_port = int(small.origin.rsplit(":", 1)[1])
        assert len(small.title_requests) == 3
        assert open_connections(client._server.pid, small_port) == 0


@contextlib.asynccontextmanager
async def title_held(start: Any) -> Any:
    """A session after its first run, its title request arrived at the small model and held until `release`."""
    release = threading.Event()
    title = [Hold(release), *openai.text_stream("Late title")]
    with openai.FakeOpenAI([openai.text_stream("answer")]) as main, \
            openai.FakeOpenAI([title], titles=None) as small:
        client = await start({"model": model(main), "smallModel": model(small, model="tiny-test")})
        session = await client.new_session()
        await run(client, session, "a prompt whose title is slow")
        await requests_arrived(small, 1)
        yield client, session, release


async def test_a_title_arriving_after_the_session_was_deleted_does_not_bring_it_back(start, workspace):
    async with title_held(start) as (client, session, release):
        await client.call("session/delete", {"workspace": client.ws_uri, "sessionId": session})
        release.set()
        # Nothing announces a dropped title: give it the time a title takes here, then look.
        with contextlib.suppress(TimeoutError):
            await client.wait_for(lambda n: n["type"] == "session_updated" and n["sessionId"] == session
                                  and n["session"]["title"] == "Late title", timeout=2)
        assert not [n for n in client.notes if n["type"] == "session_updated" and n["sessionId"] == session
                    and n["session"]["title"] == "Late title"]
        await client.shutdown_session()
    assert session not in [s["id"] for s in read_db(workspace)["sessions"]]


# ---------------------------------------------------------------------- context files
async def test_context_files_are_in_the_system_prompt(start, workspace):
    files = {"AGENTS.md": "agents-marker-1", "CRUSH.md": "crush-marker-2", "CLAUDE.md": "claude-marker-3",
             ".github/copilot-instructions.md": "copilot-marker-4", "CRUSH.local.md": "local-marker-5"}
    for name, marker in files.items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(f"# {name}\nAlways follow {marker}.\n")
    (workspace / "sub").mkdir()
    (workspace / "sub" / "AGENTS.md").write_text("nested-marker-never-read\n")
    with openai.FakeOpenAI([openai.text_stream("ok")]) as server:
        client = await start({"model": model(server)})
        await run(client, await client.new_session(), "hi")
    system = server.requests[0]["messages"][0]
    assert system["role"] == "system"
    for marker in files.values():
        assert f"Always follow {marker}." in system["content"]
    assert "nested-marker-never-read" not in system["content"]


# ---------------------------------------------------------------------- agent/summarize
async def test_summarize_writes_a_summary_that_later_prompts_start_from(start):
    responses = [openai.text_stream("first answer"), openai.text_stream("second answer"),
                 openai.text_stream("SUMMARY: two questions", prompt_tokens=300, completion_tokens=12),
                 openai.text_stream("third answer")]
    with openai.FakeOpenAI(responses) as server:
        client = await start({"model": model(server)})
        session = await client.new_session()
        await run(client, session, "first question")
        await run(client, session, "second question")
        accepted = await summarize(client, session)
        assert set(accepted) == {"accepted", "runId"} and accepted["accepted"] is True
        done = await client.completed(accepted["runId"])
        summarized = await get_session(client, session)
        messages = await stored(client, session)
        await run(client, session, "third question")
    assert_runs_end_once(client.notes, [accepted["runId"]])
    types = client.types_of(accepted["runId"])
    assert types[0] == "run_started" and types[-1] == "run_complete"
    assert "text_delta" in types and "message_finished" in types
    assert (done["finishReason"], done["text"]) == ("end_turn", "SUMMARY: two questions")
    # The summary request: the whole conversation, then the summary prompt, no tools.
    summary_request = server.requests[2]
    assert not summary_request.get("tools")
    assert conversation(summary_request) == [("user", "first question"), ("assistant", "first answer"),
                                             ("user", "second question"), ("assistant", "second answer"),
                                             ("user", SUMMARY_PROMPT)]
    # Stored: one assistant message more, holding the summary; no user message for it.
    assert roles(messages) == ["user", "assistant", "user", "assistant", "assistant"]
    assert text(messages[-1]) == "SUMMARY: two questions" and done["messageId"] == messages[-1]["id"]
    assert (summarized["promptTokens"], summarized["completionTokens"]) == (0, 12)
    # The next prompt sends the summary (as a user message) instead of the history.
    assert conversation(server.requests[3]) == [("user", "SUMMARY: two questions"), ("user", "third question")]


async def test_summarize_refusals(start):
    held = [openai.chunk({"role": "assistant", "content": ""}), openai.chunk({"content": "working"}), Hold()]
    with openai.FakeOpenAI([held]) as server:
        client = await start({"model": model(server)})
        session = await client.new_session()
        busy_run = (await client.send(session, "long job"))["runId"]
        await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == busy_run)
        await refused_with(client, "agent/summarize", {"workspace": client.ws_uri, "sessionId": session},
                           "session_busy", -32015)
        await refused_with(client, "agent/summarize", {"workspace": client.ws_uri, "sessionId": "ghost"},
                           "session_not_found", -32014)
        await client.call("agent/cancel", {"workspace": client.ws_uri, "sessionId": session})
        assert (await client.completed(busy_run))["finishReason"] == "canceled"


async def test_summarize_of_an_empty_session_makes_no_model_call(start):
    with openai.FakeOpenAI([]) as server:
        client = await start({"model": model(server)})
        session = await client.new_session()
        accepted = await summarize(client, session)
        done = await client.completed(accepted["runId"])
    assert done["finishReason"] == "end_turn" and done["text"] == ""
    assert server.requests == [] and await stored(client, session) == []


async def test_a_prompt_sent_while_summarizing_waits_and_starts_from_the_summary(start):
    release = threading.Event()
    slow_summary = [Hold(release), *openai.text_stream("SUMMARY: one question")]
    responses = [openai.text_stream("first answer"), slow_summary, openai.text_stream("next answer")]
    with openai.FakeOpenAI(responses) as server:
        client = await start({"model": model(server)})
        session = await client.new_session()
        await run(client, session, "first question")
        summary_run = (await summarize(client, session))["runId"]
        await requests_arrived(server, 2)
        for mode in ("queue", "steer"):  # a summary takes no steering: both wait
            sent = await client.send(session, f"{mode} question", mode=mode)
            assert sent["queued"] is True, mode
        release.set()
        await client.completed(summary_run)
        queued_runs = [n["runId"] for n in client.notes if n["type"] == "run_queued"]
        for run_id in queued_runs:
            await client.completed(run_id)
    assert len(queued_runs) == 2
    assert conversation(server.requests[2])[:2] == [("user", "SUMMARY: one question"), ("user", "queue question")]


async def test_a_cancelled_summary_is_deleted(start):
    summary = [openai.chunk({"role": "assistant", "content": ""}), openai.chunk({"content": "SUMMARY: half"}), Hold()]
    responses = [openai.text_stream("first answer"), summary, openai.text_stream("next answer")]
    with openai.FakeOpenAI(responses) as server:
        client = await start({"model": model(server)})
        session = await client.new_session()
        await run(client, session, "first question")
        before = await stored(client, session)
        summary_run = (await summarize(client, session))["runId"]
        await client.wait_for(lambda n: n["type"] == "text_delta" and n["runId"] == summary_run)
        assert (await client.call("agent/cancel", {"workspace": client.ws_uri, "sessionId": session})) == {"canceled": 1}
        done = await client.completed(summary_run)
        after = await stored(client, session)
        await run(client, session, "next question")
    assert done["finishReason"] == "canceled"
    assert "agent_error" not in client.types_of(summary_run)
    assert [m["id"] for m in after] == [m["id"] for m in before]
    # No summary took effect: the next prompt sends the whole history.
    assert conversation(server.requests[2]) == [("user", "first question"), ("assistant", "first answer"),
                                                ("user", "next question")]


# ---------------------------------------------------------------------- automatic summaries
async def test_a_turn_near_the_context_window_summarizes_and_goes_on(start, workspace):
    """Tool calls that fill 80% of the window: summarize, then continue from the summary with the request."""
    (workspace / "a.txt").write_text("alpha\n")
    responses = [openai.tool_call_stream("view", json.dumps({"file_path": "a.txt"}), prompt_tokens=850,
                                         completion_tokens=20),
                 openai.text_stream("SUMMARY: read a.txt", prompt_tokens=900, completion_tokens=40),
                 openai.text_stream("finished after the summary", prompt_tokens=100, completion_tokens=10)]
    with openai.FakeOpenAI(responses) as server:
        client = await start({"model": model(server, contextWindow=1000)})
        session = await client.new_session()
        run_id, done = await run(client, session, "read a.txt please")
        messages = await stored(client, session)
        counters = await get_session(client, session)
    assert (done["finishReason"], done["text"]) == ("end_turn", "finished after the summary")
    summary_request, continued = server.requests[1], server.requests[2]
    assert not summary_request.get("tools") and user_texts(summary_request)[-1] == SUMMARY_PROMPT
    assert "alpha" in json.dumps(summary_request["messages"])  # the tool ran before the summary
    continuation = CONTINUATION.format("read a.txt please")
    assert conversation(continued) == [("user", "SUMMARY: read a.txt"), ("user", continuation)]
    assert continued.get("tools")
    assert roles(messages) == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert text(messages[3]) == "SUMMARY: read a.txt" and text(messages[4]) == continuation
    created = [n["message"] for n in client.of_run(run_id) if n["type"] == "message_created"]
    assert [m["id"] for m in created] == [m["id"] for m in messages]
    assert done["usage"]["inputTokens"] == 850 + 900 + 100
    assert (counters["promptTokens"], counters["completionTokens"]) == (100, 10)


async def test_an_answer_near_the_context_window_is_summarized_after_it(start):
    responses = [openai.text_stream("a long answer", prompt_tokens=900, completion_tokens=10),
                 openai.text_stream("SUMMARY: one long answer", prompt_tokens=910, completion_tokens=15,
                                    finish_reason="length"),
                 openai.text_stream("next answer")]
    with openai.FakeOpenAI(responses) as server:
        client = await start({"model": model(server, contextWindow=1000)})
        session = await client.new_session()
        run_id, done = await run(client, session, "tell me everything")
        messages = await stored(client, session)
        await run(client, session, "and then?")
    assert roles(messages) == ["user", "assistant", "assistant"]
    assert text(messages[2]) == "SUMMARY: one long answer"
    # The run still reports its answer and how it ended, not the summary's.
    assert (done["finishReason"], done["text"]) == ("end_turn", "a long answer")
    assert done["messageId"] == messages[1]["id"] and finish_reason(messages[1]) == "end_turn"
    assert conversation(server.requests[2]) == [("user", "SUMMARY: one long answer"), ("user", "and then?")]
    assert "agent_error" not in client.types_of(run_id)


async def test_anthropic_history_after_a_summary_is_one_user_message(start):
    """Anthropic wants alternating roles: the summary and the next prompt share one user message."""
    responses = [anthropic.text_stream("first answer"), anthropic.text_stream("SUMMARY: asked once"),
                 anthropic.text_stream("next answer")]
    with anthropic.FakeAnthropic(responses) as server:
        client = await start({"model": model(server, provider="anthropic", model="claude-test")})
        session = await client.new_session()
        await run(client, session, "first question")
        await client.completed((await summarize(client, session))["runId"])
        _run_id, done = await run(client, session, "next question")
    assert done["text"] == "next answer"
    summary_request = server.requests[1]
    assert not summary_request.get("tools")
    assert "summar" in server.system_text(summary_request).lower()
    (message,) = server.requests[2]["messages"]
    assert message["role"] == "user"
    assert [b["text"] for b in message["content"]] == ["SUMMARY: asked once", "next question"]


async def test_a_rename_during_title_generation_is_kept(start):
    async with title_held(start) as (client, session, release):
        await client.call("session/rename", {"workspace": client.ws_uri, "sessionId": session, "title": "Mine"})
        mark = client.notes[-1]["seq"]
        release.set()
        late = await client.wait_for(lambda n: n["seq"] > mark and n["type"] == "session_updated"
                                     and n["sessionId"] == session)
        assert late["session"]["title"] == "Mine"
        got = await client.call("session/get", {"workspace": client.ws_uri, "sessionId": session})
        assert got["title"] == "Mine"
        await client.shutdown_session()

