"""The backend and the turn loop in-process: no server, no client process, a recording `Client`.

What the protocol tests show through stdio, shown here one layer down: the
backend opens a folder, runs a prompt to its one `run_complete` with a
scripted model and stores it; a turn gets its dependencies (`TurnDeps`) and
plays with any implementation of them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from crush_ls.agent import Agent
from crush_ls.agent.events import RunEvents
from crush_ls.agent.usage import RunUsage, cost
from crush_ls.backend import Backend
from crush_ls.permissions import Permissions
from crush_ls.protocol.capabilities import ClientCapabilities
from crush_ls.protocol.params import ModelSelection, SendMessageParams
from crush_ls.providers import create_provider
from crush_ls.providers.base import ModelInfo, Usage
from crush_ls.settings import ModelConfig, PermissionSettings, Settings, parse_init_options
from crush_ls.storage import DB_NAME, Store, prepare_data_directory
from crush_ls.tools import builtin_tools


class RecordingClient:
    """A `backend.Client` that records notifications and asks nobody."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self.capabilities = ClientCapabilities()

    def send(self, body: dict[str, Any]) -> None:
        self.sent.append(body)
        self._arrived.set()

    def can_ask(self) -> bool:
        return False

    async def ask(self, params: dict[str, Any]) -> Any:
        raise AssertionError("nobody to ask")

    async def request(self, method: str, params: Any, timeout: float | None = None) -> Any:
        raise AssertionError(f"nobody to answer {method}")

    async def completed(self, run_id: str) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                done = [n for n in self.sent if n["type"] == "run_complete" and n["runId"] == run_id]
                if done:
                    return done[0]
                self._arrived.clear()
                await self._arrived.wait()

        return await asyncio.wait_for(wait(), 10)


def scripted(*texts: str) -> dict[str, Any]:
    return {"provider": "scripted", "script": {"responses": [{"events": [{"text": t}]} for t in texts]}}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CRUSH_GLOBAL_CONFIG", "CRUSH_GLOBAL_DATA"):
        monkeypatch.setenv(name, "/nonexistent/crush.json")  # never the developer's own files
    root = tmp_path / "ws"
    root.mkdir()
    return root.resolve()


async def test_the_backend_runs_a_prompt_to_its_one_run_complete_and_stores_it(folder: Path):
    client = RecordingClient()
    backend = Backend(client)
    backend.init_options = parse_init_options({"model": scripted("hello from the script")})
    workspace = backend.open_workspace(folder.as_uri())
    assert workspace is not None
    session = (await backend.create_session(None, None))["id"]
    accepted = backend.send_message(SendMessageParams(session_id=session, prompt="hi"))
    done = await client.completed(accepted["runId"])
    assert (done["text"], done["finishReason"]) == ("hello from the script", "end_turn")
    of_run = [n["type"] for n in client.sent if n.get("runId") == accepted["runId"]]
    assert of_run[0] == "run_started" and of_run.count("run_complete") == 1 and of_run[-1] == "run_complete"
    messages = (await backend.session_messages(None, session))["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    await backend.close_all()
    assert (folder / ".crush" / DB_NAME).is_file()


async def test_set_model_switches_the_next_run_in_process(folder: Path):
    client = RecordingClient()
    backend = Backend(client)
    backend.init_options = parse_init_options({"model": scripted("first")})
    backend.open_workspace(folder.as_uri())
    session = (await backend.create_session(None, None))["id"]
    switched = backend.set_model(None, ModelSelection(provider="scripted", script=scripted("second")["script"]))
    assert switched["current"]["provider"] == "scripted"
    done = await client.completed(backend.send_message(SendMessageParams(session_id=session, prompt="x"))["runId"])
    assert done["text"] == "second"
    await backend.close_all()


async def test_an_agent_plays_a_turn_without_a_backend(folder: Path):
    """Agent is the `TurnDeps` of its turns; built by hand, it needs no backend or transport."""
    sent: list[dict[str, Any]] = []
    store = Store.open(prepare_data_directory(folder, ".crush") / DB_NAME)
    tasks: set[asyncio.Task[Any]] = set()

    def spawn(coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        return task

    agent = Agent(
        workspace_uri=folder.as_uri(), root=folder, settings=Settings(), store=store,
        provider=create_provider(ModelConfig(**scripted("turned")), folder), small_provider=lambda: None,
        tools=builtin_tools, permissions=Permissions(PermissionSettings(), RecordingClient()),
        send=sent.append, spawn=spawn,
    )
    session = store.new_session()
    run = agent.new_run(session.id, "run-1", "play", [])
    agent.coordinator.accept(run)
    await asyncio.wait(agent.coordinator.workers())
    (done,) = [n for n in sent if n["type"] == "run_complete"]
    assert (done["text"], done["finishReason"], done["runId"]) == ("turned", "end_turn", "run-1")
    assert isinstance(run.events, RunEvents) and run.events.completed
    await agent.close_providers()
    await store.close()


def test_one_cost_formula_prices_cache_reads_and_writes():
    info = ModelInfo(provider="p", model="m", cost_per_1m_in=1, cost_per_1m_out=2, cost_per_1m_in_cached=3,
                     cost_per_1m_out_cached=4)
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_write_tokens=1_000_000,
                  cache_read_tokens=1_000_000)
    assert cost(usage, info) == 1 + 2 + 3 + 4
    total = RunUsage()
    total.add(RunUsage(1, 2, 0.5))
    total.add(RunUsage(3, 4, 0.25))
    assert (total.input_tokens, total.output_tokens, total.cost) == (4, 6, 0.75)
