"""The `acp` SDK's real client against `crush-ls acp` (spawn_agent_process), with recorded updates.

`agent(tmp_path, *responses)` starts `crush-ls acp` with the scripted model on a
workspace folder and yields an `AcpHarness`: the SDK's `ClientSideConnection`
(`.conn`), a `RecordingClient` (`.client`) that records every `session/update`
and answers permission requests and `fs/*`, and helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import acp
from acp import schema

TIMEOUT = 15.0


def say(text: str, **extra: Any) -> dict[str, Any]:
    return {"events": [{"text": text}], **extra}


def tool(name: str, input: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"events": [{"toolCall": {"name": name, "input": input}}], **extra}


class RecordingClient:
    """An ACP client: records updates, answers permissions, serves files (an editor's buffers)."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()
        self.permission_requests: list[schema.RequestPermissionRequest] = []
        # An option id, "cancelled", or a callable (request) -> awaitable/option id.
        self.permission_answer: Any = "allow_once"
        self.buffers: dict[str, str] = {}  # path -> unsaved text the editor holds
        self.reads: list[str] = []
        self.received: list[dict[str, Any]] = []  # every raw message from the agent
        self.writes: list[tuple[str, str]] = []

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        self.updates.append((session_id, update))
        self._changed.set()

    async def request_permission(self, options: list[Any], session_id: str, tool_call: Any,
                                 **_: Any) -> schema.RequestPermissionResponse:
        self.permission_requests.append(schema.RequestPermissionRequest(
            options=options, session_id=session_id, tool_call=tool_call))
        self._changed.set()
        answer = self.permission_answer
        if callable(answer):
            answer = await answer(tool_call)
        if answer == "cancelled":
            return schema.RequestPermissionResponse(outcome=schema.DeniedOutcome(outcome="cancelled"))
        return schema.RequestPermissionResponse(outcome=schema.AllowedOutcome(outcome="selected", option_id=answer))

    async def read_text_file(self, path: str, session_id: str, limit: int | None = None, line: int | None = None,
                             **_: Any) -> schema.ReadTextFileResponse:
        self.reads.append(path)
        if path in self.buffers:
            return schema.ReadTextFileResponse(content=self.buffers[path])
        try:
            return schema.ReadTextFileResponse(content=Path(path).read_text())
        except OSError as exc:
            raise acp.RequestError.resource_not_found(path) from exc

    async def write_text_file(self, content: str, path: str, session_id: str, **_: Any) -> None:
        self.writes.append((path, content))
        self.buffers[path] = content  # into the buffer, not (yet) to disk
        return None

    # ------------------------------------------------------------------ waiting
    async def wait_for(self, predicate: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
        async with asyncio.timeout(timeout):
            while not (found := predicate()):
                self._changed.clear()
                await self._changed.wait()
            return found

    def of(self, session_id: str, kind: str | None = None) -> list[Any]:
        return [u for s, u in self.updates if s == session_id and (kind is None or u.session_update == kind)]


class AcpHarness:
    def __init__(self, conn: Any, process: Any, client: RecordingClient, root: Path) -> None:
        self.conn = conn
        self.process = process
        self.client = client
        self.root = root

    async def initialize(self, fs: bool = False) -> schema.InitializeResponse:
        caps = schema.ClientCapabilities(fs=schema.FileSystemCapabilities(read_text_file=fs, write_text_file=fs))
        return await self.conn.initialize(protocol_version=1, client_capabilities=caps,
                                          client_info=schema.Implementation(name="pytest", version="1"))

    async def new_session(self, **extra: Any) -> str:
        return (await self.conn.new_session(cwd=str(self.root), mcp_servers=[], **extra)).session_id

    async def prompt(self, session_id: str, text: str, timeout: float = TIMEOUT) -> schema.PromptResponse:
        return await asyncio.wait_for(self.conn.prompt(session_id=session_id, prompt=[acp.text_block(text)]), timeout)


def write_script(root: Path, responses: tuple[dict[str, Any], ...]) -> Path:
    path = root.parent / f"{root.name}-script.json"
    path.write_text(json.dumps({"responses": list(responses)}))
    return path


@contextlib.asynccontextmanager
async def agent(root: Path, *responses: dict[str, Any], args: tuple[str, ...] = (),
                client: RecordingClient | None = None) -> AsyncIterator[AcpHarness]:
    """`crush-ls acp --script FILE` on `root`, with the SDK's client."""
    client = client or RecordingClient()
    flags = ["--script", str(write_script(root, responses))] if responses else []
    def observe(event: Any) -> None:
        if event.direction.value == "incoming":
            client.received.append(event.message)

    async with acp.spawn_agent_process(
        client, sys.executable, "-m", "crush_ls", "acp", *flags, *args, cwd=root,
        env={"CRUSH_LS_RETRY_BASE_MS": "10"}, observers=[observe],
    ) as (conn, process):
        yield AcpHarness(conn, process, client, root)


def folded(updates: list[Any]) -> dict[str, Any]:
    """What an editor shows in the end: joined text, thoughts, each tool call's final state, the plan."""
    text, thought, calls, plan = "", "", {}, None
    for update in updates:
        kind = update.session_update
        if kind == "agent_message_chunk":
            text += update.content.text
        elif kind == "agent_thought_chunk":
            thought += update.content.text
        elif kind in ("tool_call", "tool_call_update"):
            fields = update.model_dump(exclude_none=True, exclude={"session_update"})
            calls.setdefault(update.tool_call_id, {}).update(fields)
        elif kind == "plan":
            plan = [e.model_dump() for e in update.entries]
    return {"text": text, "thought": thought, "calls": calls, "plan": plan}


TURN = (
    {"step": 0, "events": [
        {"reasoning": "The user wants a file."},
        {"text": "Writing it.", "chunkSize": 4, "delayMs": 30},  # 30 ms apart: not joined
        {"toolCall": {"name": "write", "input": {"file_path": "hello.py", "content": "print('hi')\n"}}},
        {"usage": {"inputTokens": 120, "outputTokens": 30}},
    ]},
    {"step": 1, "events": [{"toolCall": {"name": "todos", "input": {"todos": [
        {"content": "Write hello.py", "status": "completed"},
        {"content": "Run it", "status": "pending"},
    ]}}}]},
    {"step": 2, "events": [{"text": "Done."}, {"usage": {"inputTokens": 200, "outputTokens": 5}}]},
)
