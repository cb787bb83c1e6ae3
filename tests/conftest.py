"""A pytest-lsp client for crush-ls and fixtures that start real servers.

`start(...)` spawns `python -m crush_ls` on a folder, initializes it and
returns an `AgentClient` that records every `agent/notification` and answers
`agent/requestPermission` with `client.permission_answer`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import register_lsp_features

from crush_ls.server import converter_factory

SERVER_CMD = [sys.executable, "-m", "crush_ls"]
NOTE_TIMEOUT = 10.0


def scripted(*responses: dict[str, Any]) -> dict[str, Any]:
    """initializationOptions.model for the scripted provider."""
    return {"provider": "scripted", "script": {"responses": list(responses)}}


def say(text: str, chunk: int | None = None, delay_ms: int | None = None, **extra: Any) -> dict[str, Any]:
    """A scripted response that streams `text`."""
    event: dict[str, Any] = {"text": text}
    if chunk:
        event["chunkSize"] = chunk
    if delay_ms:
        event["delayMs"] = delay_ms
    return {"events": [event], **extra}


class AgentClient(LanguageClient):
    """Records agent notifications; answers permission requests."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(converter_factory=converter_factory, **kwargs)
        self.notes: list[dict[str, Any]] = []
        self._note_event = asyncio.Event()
        self.permission_requests: list[dict[str, Any]] = []
        # A value (the result), or a callable (params) -> result / awaitable.
        self.permission_answer: Any = {"decision": "allow"}
        self.ws_uri = ""
        self.root = Path()

    # -------------------------------------------------------------- requests
    async def call(self, method: str, params: Any = None) -> Any:
        return await self.protocol.send_request_async(method, params)

    async def new_session(self, title: str | None = None) -> str:
        params = {"workspace": self.ws_uri} if title is None else {"workspace": self.ws_uri, "title": title}
        return (await self.call("session/create", params))["id"]

    async def send(self, session_id: str, prompt: str, **extra: Any) -> dict[str, Any]:
        return await self.call("agent/sendMessage", {"workspace": self.ws_uri, "sessionId": session_id,
                                                     "prompt": prompt, **extra})

    async def session_messages(self, session_id: str) -> list[dict[str, Any]]:
        return (await self.call("session/messages", {"workspace": self.ws_uri, "sessionId": session_id}))["messages"]

    # -------------------------------------------------------------- notifications
    def on_note(self, params: dict[str, Any]) -> None:
        self.notes.append(params)
        self._note_event.set()

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = NOTE_TIMEOUT) -> dict[str, Any]:
        """The first recorded notification matching `predicate` (waiting for it if needed)."""

        async def scan() -> dict[str, Any]:
            seen = 0
            while True:
                for note in self.notes[seen:]:
                    if predicate(note):
                        return note
                seen = len(self.notes)
                self._note_event.clear()
                await self._note_event.wait()

        return await asyncio.wait_for(scan(), timeout)

    async def completed(self, run_id: str, timeout: float = NOTE_TIMEOUT) -> dict[str, Any]:
        return await self.wait_for(lambda n: n["type"] == "run_complete" and n.get("runId") == run_id, timeout)

    def of_run(self, run_id: str) -> list[dict[str, Any]]:
        return [n for n in self.notes if n.get("runId") == run_id]

    def types_of(self, run_id: str) -> list[str]:
        return [n["type"] for n in self.of_run(run_id)]

    def text_of(self, run_id: str) -> str:
        return "".join(n["text"] for n in self.of_run(run_id) if n["type"] == "text_delta")


def client_factory(client: AgentClient | None = None) -> AgentClient:
    client = client or AgentClient()
    register_lsp_features(client)

    @client.feature("agent/notification")
    def on_note(params: dict[str, Any]) -> None:
        client.on_note(params)

    @client.feature("agent/requestPermission")
    async def on_permission(params: dict[str, Any]) -> Any:
        client.permission_requests.append(params)
        answer = client.permission_answer
        if callable(answer):
            answer = answer(params)
            if asyncio.iscoroutine(answer) or isinstance(answer, asyncio.Future):
                answer = await answer
        return answer

    return client


def server_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "CRUSH_LS_RETRY_BASE_MS": "10", "PYTHONUNBUFFERED": "1", **extra}
    env.setdefault("CRUSH_GLOBAL_CONFIG", "/nonexistent/crush.json")  # never read the developer's config
    env.setdefault("CRUSH_GLOBAL_DATA", "/nonexistent/crush.json")  # nor the state Crush's TUI saved
    return env


async def start_client(
    folder: Path,
    init_options: dict[str, Any] | None = None,
    *,
    permissions: bool = False,
    folders: list[Path] | None = None,
    env: dict[str, str] | None = None,
    capabilities: types.ClientCapabilities | None = None,
    factory: Callable[[], AgentClient] = lambda: client_factory(),
) -> AgentClient:
    config = ClientServerConfig(server_command=SERVER_CMD, client_factory=factory,
                                server_env=env or server_env())
    client: AgentClient = await config.start()  # type: ignore[assignment]
    capabilities = capabilities or types.ClientCapabilities()
    if permissions:
        capabilities.experimental = {**(capabilities.experimental or {}), "crush": {
            **(capabilities.experimental or {}).get("crush", {}), "permissions": True}}
    all_folders = folders or [folder]
    client.ws_uri = all_folders[0].as_uri()
    client.root = all_folders[0]
    client.init_result = await client.initialize_session(types.InitializeParams(
        capabilities=capabilities,
        workspace_folders=[types.WorkspaceFolder(uri=f.as_uri(), name=f.name) for f in all_folders],
        initialization_options=init_options,
    ))
    return client


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    return folder


@pytest.fixture
async def start(workspace: Path):
    """Start servers for a test; each is shut down (shutdown + exit) afterwards."""
    clients: list[AgentClient] = []

    async def _start(init_options: dict[str, Any] | None = None, folder: Path | None = None, **kw: Any) -> AgentClient:
        client = await start_client(folder or workspace, init_options, **kw)
        clients.append(client)
        return client

    yield _start
    for client in clients:
        server = client._server
        if server is not None and server.returncode is None:
            try:
                await asyncio.wait_for(client.shutdown_session(), 10)
            except Exception:  # noqa: BLE001 - a test that broke the server already failed
                server.kill()
        await client.stop()


def read_db(folder: Path, data_dir: str = ".crush") -> dict[str, list[dict[str, Any]]]:
    """What is on disk: sessions and messages, read with sqlite3 directly."""
    import sqlite3

    db = sqlite3.connect(folder / data_dir / "crush-ls.db")
    db.row_factory = sqlite3.Row
    sessions = [dict(r) for r in db.execute("SELECT * FROM sessions ORDER BY created_at")]
    messages = [dict(r, parts=json.loads(r["parts"])) for r in db.execute("SELECT * FROM messages ORDER BY seq")]
    db.close()
    return {"sessions": sessions, "messages": messages}
