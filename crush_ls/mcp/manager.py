"""The MCP servers of one workspace: connected in the background, restarted, closed with it.

Each server has one task (`Server.serve`) that owns its connection: the SDK's
transports are anyio task groups, which must be entered and left by the same
task. Tool calls come from the runs' tasks and only send requests over it.
Nothing here blocks the event loop: the SDK is imported in a thread and every
wait is bounded by the server's `timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, Final, Literal

from ..protocol import shapes
from .config import ServerConfig

if TYPE_CHECKING:
    from .tools import McpTool

log = logging.getLogger(__name__)

State = Literal["starting", "connected", "failed", "disabled"]
STARTING: Final = "starting"
CONNECTED: Final = "connected"
FAILED: Final = "failed"
DISABLED: Final = "disabled"
MAX_RESTARTS = 3  # a stdio server that exits is started again at most this often in a row
HEALTHY_AFTER = 30.0  # seconds connected after which an exit no longer counts as "in a row"
BACKOFF = 0.5  # seconds before the first restart, doubled for each next one
CLOSE_TIMEOUT = 1.2  # the SDK's stop sequence is 0.4 + 0.4 s (see _sdk.py)
STDERR_TAIL = 400
SDK = "crush_ls.mcp._sdk"

# A stdio server is started through this: it asks the kernel for SIGKILL when crush-ls
# dies (PR_SET_PDEATHSIG, kept across exec), then becomes the server. The SDK starts
# servers itself (no preexec_fn), and a server that ignores the end of its input
# would otherwise outlive a crush-ls that was killed. argv: crush-ls's pid, the command.
TIED = """
import ctypes, os, sys
try:
    ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    why = "command not found" if isinstance(exc, FileNotFoundError) else exc.strerror
    sys.stderr.write(f"cannot start {sys.argv[2]!r}: {why}\\n")
    sys.exit(127)
"""


_sdk: ModuleType | None = None
IMPORT_SWITCH_INTERVAL = 0.0005  # seconds


async def load_sdk() -> ModuleType:
    """The SDK, imported in a worker thread (the import lock makes later callers wait for the first).

    The import is a second of pure Python holding the GIL: with the default 5 ms
    switch interval a request arriving meanwhile waits up to 5 ms at each wake-up
    of the loop. A short interval while it imports keeps the loop responsive.
    """
    global _sdk
    if _sdk is None:
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, IMPORT_SWITCH_INTERVAL))
        try:
            _sdk = await asyncio.to_thread(importlib.import_module, SDK)
        finally:
            sys.setswitchinterval(interval)
    return _sdk


class Unavailable(Exception):
    """A call to a server that is not connected (starting, restarting or failed)."""


class _WatchedRead:
    """The transport's read stream, telling when it ends: a stdio server exited, or the connection closed."""

    def __init__(self, stream: Any, on_end: Callable[[], None]) -> None:
        self._stream = stream
        self._on_end = on_end

    def __getattr__(self, name: str) -> Any:  # e.g. `last_context`, read by the SDK's dispatcher
        return getattr(self._stream, name)

    async def receive(self) -> Any:
        try:
            return await self._stream.receive()
        except Exception:
            self._on_end()
            raise

    def __aiter__(self) -> _WatchedRead:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._stream.__anext__()
        except StopAsyncIteration:
            self._on_end()
            raise

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> _WatchedRead:
        await self._stream.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        self._on_end()
        return await self._stream.__aexit__(*exc)


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside the SDK's (anyio) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class Server:
    """One configured server: its state, its tools and the task that keeps it connected."""

    def __init__(self, config: ServerConfig, root: Path, changed: Callable[[Server], None]) -> None:
        self.config = config
        self.name = config.name
        self.root = root
        self._changed = changed
        self.state: State = DISABLED if config.disabled else FAILED if config.error else STARTING
        self.error: str | None = None if config.disabled else config.error
        self.restarts = 0
        self.tools: dict[str, McpTool] = {}  # by the name the model sees
        self.client: Any = None  # the SDK's Client while connected
        self.task: asyncio.Task[None] | None = None
        self._stream_error: str | None = None  # what a server wrote on stdout that is not JSON-RPC
        self._http_status: int | None = None  # the last HTTP error status of an http or sse server

    # ------------------------------------------------------------------ state
    def to_wire(self) -> shapes.McpServer:
        return {
            "name": self.name,
            "type": self.config.type,
            "state": self.state,
            "error": self.error,
            "restarts": self.restarts,
            "tools": [{"name": t.name, "description": t.description} for t in self.tools.values()],
        }

    def _set(self, state: State, error: str | None) -> None:
        self.state, self.error = state, error
        if state != CONNECTED:
            self.tools = {}
        level = logging.WARNING if error else logging.INFO
        log.log(level, "MCP server %s: %s%s", self.name, state, f" ({error})" if error else "")
        self._changed(self)

    # ------------------------------------------------------------------ the connection task
    async def serve(self) -> None:
        """Connect; restart a stdio server that exits (bounded, with backoff); end failed with a reason."""
        loop = asyncio.get_running_loop()
        sdk = await load_sdk()
        in_a_row = 0
        while True:
            started = loop.time()
            connected, reason = await self._connect_once(sdk)
            if connected and loop.time() - started >= HEALTHY_AFTER:
                in_a_row = 0
            if not connected or self.config.type != "stdio" or in_a_row >= MAX_RESTARTS:
                if connected and self.config.type == "stdio":
                    reason += f"; gave up after {MAX_RESTARTS} restarts"
                self._set(FAILED, reason)
                return
            in_a_row += 1
            self.restarts += 1
            self._set(STARTING, f"{reason}; restarting ({in_a_row} of {MAX_RESTARTS})")
            await asyncio.sleep(BACKOFF * 2 ** (in_a_row - 1))

    async def _connect_once(self, sdk: ModuleType) -> tuple[bool, str]:
        """One connection, until it ends; returns (whether it got connected, why it ended)."""
        lost = asyncio.Event()
        self._stream_error = self._http_status = None
        connected = False
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as stderr:
            try:
                client = sdk.Client(
                    self._transport(sdk, stderr, lost), mode="legacy", cache=None,
                    read_timeout_seconds=self.config.timeout, message_handler=self._on_message,
                    client_info=sdk.types.Implementation(name="crush-ls", version=_version()),
                )
                async with client:
                    await self._list_tools(client)
                    self.client, connected = client, True
                    self._set(CONNECTED, None)
                    await lost.wait()
                    return True, self._ended(stderr)
            except BaseException as exc:
                leaf = _leaf(exc)
                if isinstance(leaf, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                    raise
                return connected, self._describe(sdk, leaf, stderr)
            finally:
                self.client = None

    @contextlib.asynccontextmanager
    async def _transport(self, sdk: ModuleType, stderr: IO[str], lost: asyncio.Event) -> AsyncIterator[Any]:
        config = self.config
        async with contextlib.AsyncExitStack() as stack:
            if config.type == "stdio":
                params = sdk.StdioServerParameters(
                    command=sys.executable, args=["-I", "-S", "-c", TIED, str(os.getpid()), config.command or "",
                                                  *config.args],
                    env={**os.environ, **config.env}, cwd=str(self.root),
                )
                streams = sdk.stdio_client(params, errlog=stderr)
            elif config.type == "sse":
                streams = sdk.sse_client(config.url, headers=config.headers, timeout=config.timeout)
            else:
                http = await stack.enter_async_context(sdk.httpx2.AsyncClient(
                    headers=config.headers, timeout=sdk.httpx2.Timeout(config.timeout, read=300),
                    event_hooks={"response": [self._on_response]}))
                streams = sdk.streamable_http_client(config.url, http_client=http)
            read, write = await stack.enter_async_context(streams)
            yield _WatchedRead(read, lost.set), write

    async def _on_response(self, response: Any) -> None:
        if response.status_code >= 400:  # the SDK turns it into an error without the status
            self._http_status = response.status_code

    async def _list_tools(self, client: Any) -> None:
        from .tools import McpTool

        tools: dict[str, McpTool] = {}
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                if self.config.offers(tool.name):
                    adapter = McpTool(self, tool.name, tool.description, tool.input_schema)
                    tools[adapter.name] = adapter
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = tools

    async def _on_message(self, message: Any) -> None:
        """Server notifications and transport faults (the SDK's message handler)."""
        if isinstance(message, Exception):
            log.warning("MCP server %s: %s", self.name, message)
            self._stream_error = self._stream_error or str(message).splitlines()[0][:200]
            return
        if getattr(message, "method", None) == "notifications/tools/list_changed" and self.client is not None:
            try:
                await self._list_tools(self.client)
            except Exception as exc:  # noqa: BLE001 - keep the old list; the next change tries again
                log.warning("MCP server %s: listing its changed tools failed: %s", self.name, exc)
                return
            self._changed(self)

    # ------------------------------------------------------------------ reasons
    def _ended(self, stderr: IO[str]) -> str:
        what = "the server exited" if self.config.type == "stdio" else "the connection closed"
        return what + _tail(stderr)

    def _describe(self, sdk: ModuleType, exc: BaseException, stderr: IO[str]) -> str:
        timeout = self.config.timeout
        if isinstance(exc, sdk.MCPError) and exc.code == sdk.types.REQUEST_TIMEOUT:
            reason = f"no answer to initialize within {timeout:g}s"
            if self._stream_error:
                reason += f"; it wrote something that is not JSON-RPC on stdout: {self._stream_error}"
        elif isinstance(exc, sdk.MCPError) and self._http_status is not None:
            reason = f"{self.config.url} answered HTTP {self._http_status}: {exc.message}"
        elif isinstance(exc, sdk.MCPError) and exc.code == sdk.types.CONNECTION_CLOSED:
            reason = "the server exited while starting" if self.config.type == "stdio" else "the connection closed"
        elif isinstance(exc, sdk.MCPError):
            reason = f"the server answered with an error: {exc.message}"
        elif isinstance(exc, FileNotFoundError):
            reason = f"cannot start {self.config.command!r}: command not found"
        elif isinstance(exc, OSError):
            reason = f"cannot start {self.config.command!r}: {exc.strerror or exc}"
        elif isinstance(exc, sdk.httpx2.HTTPStatusError):
            reason = f"{self.config.url} answered HTTP {exc.response.status_code}"
        elif isinstance(exc, sdk.httpx2.HTTPError):
            reason = f"cannot reach {self.config.url}: {type(exc).__name__}: {exc}"
        else:
            reason = f"{type(exc).__name__}: {exc}"
        return reason + _tail(stderr)

    # ------------------------------------------------------------------ calls
    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """Call a tool; raises Unavailable, or the SDK's errors (a timeout is an MCPError)."""
        client = self.client
        if client is None or self.state != CONNECTED:
            detail = f" ({self.error})" if self.error else ""
            raise Unavailable(f"MCP server {self.name!r} is not connected: {self.state}{detail}")
        return await client.call_tool(tool, arguments, read_timeout_seconds=self.config.timeout)


def _tail(stderr: IO[str]) -> str:
    try:
        stderr.seek(0)
        text = stderr.read()[-STDERR_TAIL:].strip()
    except (OSError, ValueError):
        return ""
    return f"; stderr: {text}" if text else ""


def _version() -> str:
    from .. import __version__

    return __version__


class McpManager:
    """All MCP servers of one workspace."""

    def __init__(self, configs: list[ServerConfig], root: Path, announce: Callable[[dict[str, Any]], None]) -> None:
        self._announce = announce
        self.servers = {c.name: Server(c, root, self._changed) for c in configs}
        self._closing = False

    def start(self) -> None:
        """Start connecting every enabled server in the background (needs the running loop)."""
        for server in self.servers.values():
            if server.state == STARTING and server.task is None:
                server.task = asyncio.get_running_loop().create_task(server.serve(), name=f"mcp-{server.name}")

    def tools(self) -> dict[str, McpTool]:
        """The tools of the connected servers, as the model sees them (read for every model step)."""
        tools: dict[str, McpTool] = {}
        for server in self.servers.values():
            if server.state == CONNECTED:
                tools.update(server.tools)
        return tools

    def to_wire(self) -> list[shapes.McpServer]:
        return [server.to_wire() for server in self.servers.values()]

    def _changed(self, server: Server) -> None:
        if not self._closing:
            self._announce({"type": "mcp_updated", "name": server.name, "servers": self.to_wire()})

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Stop every server (stdio children are gone when this returns, or were killed)."""
        self._closing = True
        tasks = [s.task for s in self.servers.values() if s.task is not None and not s.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                log.error("MCP %s did not stop within %.1fs", task.get_name(), timeout)
