"""The crush-ls server as a child process, spoken to over its stdio (docs/protocol.md).

`AgentServer` starts `python -m crush_ls` in the workspace folder, runs the
`initialize` handshake and offers the requests the terminal client needs.
The child gets its own session (process group) so that a Ctrl-C typed in the
terminal reaches only the client, which turns it into `agent/cancel`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from .. import __version__
from .rpc import Connection, ConnectionClosed, RpcError

STDERR_TAIL_LINES = 40
SHUTDOWN_TIMEOUT_S = 5.0


class ServerExited(Exception):
    """The server process ended unexpectedly; `stderr_tail` holds its last log lines."""

    def __init__(self, message: str, stderr_tail: list[str]) -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


def server_command() -> list[str]:
    # CRUSH_LS_SERVER_COMMAND lets a harness point the client at another build.
    override = os.environ.get("CRUSH_LS_SERVER_COMMAND")
    if override:
        import shlex

        return shlex.split(override)
    return [sys.executable, "-m", "crush_ls"]


@dataclasses.dataclass
class _Child:
    """The running server process and the tasks reading its two pipes."""

    proc: asyncio.subprocess.Process
    rpc: Connection
    reader: asyncio.Task[None]
    stderr_reader: asyncio.Task[None]


class AgentServer:
    def __init__(self, folder: Path, *, forward_stderr: bool = False) -> None:
        self.folder = folder
        self.workspace = folder.as_uri()
        self._forward_stderr = forward_stderr
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._child: _Child | None = None
        self.info: dict[str, Any] = {}

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            *server_command(),
            cwd=self.folder,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # terminal Ctrl-C is ours to handle, not the server's
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None  # all PIPE
        rpc = Connection(proc.stdout, proc.stdin)
        self._child = _Child(
            proc=proc,
            rpc=rpc,
            reader=asyncio.create_task(rpc.serve(), name="crush-ls reader"),
            stderr_reader=asyncio.create_task(self._drain_stderr(proc.stderr), name="crush-ls stderr"),
        )

    @property
    def _started(self) -> _Child:
        if self._child is None:
            raise RuntimeError("the crush-ls server was not started")
        return self._child

    @property
    def rpc(self) -> Connection:
        return self._started.rpc

    async def initialize(self, init_options: dict[str, Any], *, permissions: bool) -> dict[str, Any]:
        """The `initialize` handshake; `permissions` declares that we answer permission requests."""
        params = {
            "processId": os.getpid(),
            "clientInfo": {"name": "crush-ls chat", "version": __version__},
            "rootUri": self.workspace,
            "workspaceFolders": [{"uri": self.workspace, "name": self.folder.name or str(self.folder)}],
            "capabilities": {"experimental": {"crush": {"permissions": permissions}}},
            "initializationOptions": init_options,
        }
        self.info = await self.call("initialize", params)
        await self.rpc.notify("initialized", {})
        return self.info

    async def stop(self) -> int | None:
        """`shutdown` + `exit`, then wait; a server that does not leave in time is killed."""
        if self._child is None:
            return None
        child = self._child
        if child.proc.returncode is None:
            with contextlib.suppress(RpcError, ConnectionClosed, ConnectionError, TimeoutError):
                await asyncio.wait_for(child.rpc.request("shutdown"), SHUTDOWN_TIMEOUT_S)
                await child.rpc.notify("exit")
            child.rpc.close_output()
            try:
                await asyncio.wait_for(child.proc.wait(), SHUTDOWN_TIMEOUT_S)
            except TimeoutError:
                self.kill()
                await child.proc.wait()
        for task in (child.reader, child.stderr_reader):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return child.proc.returncode

    def kill(self) -> None:
        if self._child is not None and self._child.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._child.proc.kill()

    async def _drain_stderr(self, stderr: asyncio.StreamReader) -> None:
        # Always read the pipe (a full pipe would block the server); keep the tail for crash
        # reports. Chunks, not readline: a log line longer than the reader's limit must not stop us.
        partial = b""
        while chunk := await stderr.read(65536):
            *lines, partial = (partial + chunk).split(b"\n")
            for line in lines:
                self._log_line(line)
        if partial:
            self._log_line(partial)

    def _log_line(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        self._stderr_tail.append(text)
        if self._forward_stderr:
            print(text, file=sys.stderr, flush=True)

    # -- requests ------------------------------------------------------------

    async def call(self, method: str, params: Any = None) -> Any:
        try:
            return await self.rpc.request(method, params)
        except ConnectionClosed as exc:
            await self.wait_exit()
            raise ServerExited(
                f"crush-ls exited (code {self._started.proc.returncode}) while waiting for {method}",
                list(self._stderr_tail),
            ) from exc

    async def wait_exit(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._started.proc.wait(), 2)
        # let the stderr reader catch the last lines
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._started.stderr_reader), 1)

    async def ws_call(self, method: str, **params: Any) -> Any:
        """A request of this workspace (every `agent/*` and `session/*` method names it)."""
        return await self.call(method, {"workspace": self.workspace, **params})

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._stderr_tail)

    @property
    def reader_done(self) -> asyncio.Task[None]:
        """Done when the server closed its output (it exited)."""
        return self._started.reader
