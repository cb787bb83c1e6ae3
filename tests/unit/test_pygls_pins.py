"""What crush-ls relies on in pygls beyond its documented API (server.py, "pygls internals").

Each test pins one thing for the pygls version in use; when an upgrade breaks
one, the section of server.py it names needs a look. The last tests drive a
server through the protocol and count pygls' bookkeeping: it must stay empty,
since crush-ls answers its own requests (the leak of generator handlers).
"""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version
from pathlib import Path

import pygls
import pytest
from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import JsonRPCRequestMessage, LanguageServerProtocol

from crush_ls.server import CrushServer, converter_factory
from tests.unit.inprocess import InProcessServer


def test_pygls_is_the_version_these_pins_were_written_for():
    assert version("pygls").startswith("2.1."), pygls.__file__


def test_initialize_is_a_builtin_generator_handler_that_can_be_extended():
    builtin = LanguageServerProtocol.lsp_initialize
    assert inspect.isgeneratorfunction(builtin) and builtin.method_name == types.INITIALIZE
    assert CrushServer().protocol.fm.builtin_features[types.INITIALIZE].__func__.__qualname__ == \
        "CrushProtocol.lsp_initialize"


def test_unknown_methods_keep_their_params_as_plain_json():
    protocol = CrushServer().protocol
    message = protocol.structure_message({"jsonrpc": "2.0", "id": 1, "method": "x/y", "params": {"class": [1]}})
    assert isinstance(message, JsonRPCRequestMessage) and message.params == {"class": [1]}
    assert converter_factory is not None


async def test_pygls_answers_initialize_and_unknown_methods_through_our_writer(tmp_path: Path):
    server = InProcessServer()
    reply = await server.request("initialize", {"capabilities": {}, "rootUri": tmp_path.as_uri()})
    crush = reply["result"]["capabilities"]["experimental"]["crush"]
    assert "session/messages" in crush["methods"]
    assert (await server.request("x/unknown", {}))["error"]["code"] == -32601
    assert not [m for m in server.out.messages if m.get("method") == "window/showMessage"]
    await server.close()


async def test_a_refused_initialize_reaches_report_server_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    server = InProcessServer()
    seen: list[Exception] = []
    monkeypatch.setattr(server.server, "report_server_error", lambda error, source: seen.append(error))
    reply = await server.request("initialize", {"capabilities": {}, "initializationOptions": {"model": 5}})
    assert reply["error"]["data"]["reason"] == "invalid_params" and seen


def _bare_server_after(*messages: dict) -> LanguageServer:
    bare = LanguageServer("bare", "0")
    bare.protocol.set_writer(type("Sink", (), {"write": lambda self, data: None, "close": lambda self: None})())

    @bare.feature(types.INITIALIZED)
    def on_initialized(params: types.InitializedParams) -> None:
        pass

    for message in messages:
        bare.protocol.handle_message(bare.protocol.structure_message(message))
    return bare


def test_pygls_keeps_a_future_for_each_notification_its_builtins_handle():
    """Why server.py `_forget_finished` exists: remove it when this fails."""
    bare = _bare_server_after(*[{"jsonrpc": "2.0", "method": "initialized", "params": {}}] * 3)
    assert len(bare.protocol._request_futures) == 3


async def test_folder_changes_leave_pygls_tables_empty(tmp_path: Path):
    server = InProcessServer()
    await server.initialize(tmp_path, {"model": {"provider": "echo"}})
    change = {"jsonrpc": "2.0", "method": "workspace/didChangeWorkspaceFolders",
              "params": {"event": {"added": [], "removed": []}}}
    server.feed(*[change] * 1000)
    assert (await server.request("session/list", {}))["result"] == {"sessions": []}
    assert len(server.server.protocol._request_futures) == 0
    await server.close()


@pytest.mark.parametrize("method", ["session/messages", "session/rename", "session/get"])
async def test_requests_leave_pygls_tables_empty(tmp_path: Path, method: str):
    """10,000 requests answered after awaiting storage: nothing stays behind (was one task each, result and all)."""
    server = InProcessServer()
    await server.initialize(tmp_path, {"model": {"provider": "echo"}})
    session = (await server.request("session/create", {}))["result"]["id"]
    params = {"sessionId": session, "title": "t"} if method == "session/rename" else {"sessionId": session}
    replies = [server.send(method, params) for _ in range(10_000)]
    answered = await asyncio.wait_for(asyncio.gather(*replies), 120)
    assert all("result" in r for r in answered), next(r for r in answered if "result" not in r)
    protocol = server.server.protocol
    assert (len(protocol._request_futures), len(protocol._result_types)) == (0, 0)
    assert server.server._answering == {} and server.out.waiting == {}
    await server.close()
