"""S2 pygls: pygls 2.1.1 LanguageServer with custom features, the way crush-ls is to be built.

Per research/pygls.md: params stay raw dicts (converter_factory),
the ack handler is a plain `def` (pygls writes its response before the run task
starts), notifications go out through `server.protocol.notify`, the 'pygls'
logger is at WARNING (at INFO it logs every outgoing body).
Same subset of crush-ls's protocol as S1 raw.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    default_converter,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from floor_common import STATUS, USAGE, accepted, script_chunks, session


def _keep_raw(field: str):
    def hook(obj: dict, cls: type):
        obj.setdefault(field, None)  # JSON-RPC allows leaving "params" out
        return cls(**obj)

    return hook


def converter_factory():
    """lsprotocol's converter, but params/results of non-LSP methods stay plain dicts."""
    conv = default_converter()
    conv.register_structure_hook(JsonRPCRequestMessage, _keep_raw("params"))
    conv.register_structure_hook(JsonRPCNotification, _keep_raw("params"))
    conv.register_structure_hook(JsonRPCResponseMessage, _keep_raw("result"))
    return conv


class FloorServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("floor-pygls", "0", converter_factory=converter_factory)
        self.seq = itertools.count(1)
        self.ids = itertools.count(1)
        self.text, self.chunks = script_chunks(None)
        self.runs: set[asyncio.Task[None]] = set()

    def emit(self, params: dict) -> None:
        params["seq"] = next(self.seq)
        self.protocol.notify("agent/notification", params)


server = FloorServer()


@server.feature(types.INITIALIZE)
def on_initialize(ls: FloorServer, params: types.InitializeParams) -> None:
    ls.text, ls.chunks = script_chunks(params.initialization_options)


@server.feature("agent/status")
def agent_status(ls: FloorServer, params) -> dict:
    return STATUS


@server.feature("session/create")
def session_create(ls: FloorServer, params) -> dict:
    return session(f"s{next(ls.ids)}")


@server.feature("agent/sendMessage")
def send_message(ls: FloorServer, params) -> dict:
    # plain `def`: pygls writes this response before the task below first runs
    params = params or {}
    sid = params.get("sessionId", "")
    rid = params.get("runId") or f"r{next(ls.ids)}"
    task = asyncio.get_running_loop().create_task(run(ls, params.get("workspace", ""), sid, rid))
    ls.runs.add(task)
    task.add_done_callback(ls.runs.discard)
    return accepted(rid, sid)


async def run(ls: FloorServer, ws: str, sid: str, rid: str) -> None:
    mid = f"m{next(ls.ids)}"
    base = {"workspace": ws, "sessionId": sid, "runId": rid, "messageId": mid}
    for chunk in ls.chunks:
        ls.emit({"type": "text_delta", **base, "text": chunk})
        await asyncio.sleep(0)  # one event-loop turn per chunk, as a streaming provider gives
    ls.emit({"type": "run_complete", **base, "text": ls.text, "finishReason": "end_turn", "usage": USAGE})


async def serve_with_asyncio_reader(rpc_stdin, rpc_stdout) -> None:
    """Variant (--aio-reader, "S2b"): pygls' own run_async loop fed by an asyncio
    StreamReader on the stdin pipe instead of `start_io`'s StdinAsyncReader, which
    makes three thread-pool round trips per message (header line, blank line, body)."""
    import threading

    from pygls.io_ import StdoutWriter, run_async

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), rpc_stdin)
    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(rpc_stdout))
    try:
        await run_async(server._stop_event, reader, server.protocol, error_handler=server.report_server_error)
    except asyncio.IncompleteReadError:
        pass  # end of input in the middle of a message


def main() -> None:
    rpc_stdout = sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout belongs to JSON-RPC
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("pygls").setLevel(logging.WARNING)
    if "--aio-reader" in sys.argv[1:]:
        try:
            asyncio.run(serve_with_asyncio_reader(sys.stdin.buffer, rpc_stdout))
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            server.shutdown()
        return
    server.start_io(sys.stdin.buffer, rpc_stdout)


if __name__ == "__main__":
    main()
