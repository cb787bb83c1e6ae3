"""Malformed input on the raw wire: every bad message is answered (or, as a notification,
ignored), the server stays up and the next prompt completes normally; stdout carries
nothing but framed JSON-RPC.
"""

from __future__ import annotations

import json
import os
import select
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from crush_ls.transport.framing import ContentLength, FrameError
from tests.conftest import say, scripted
from tests.raw import RawServer, run_complete_of

MODEL = scripted(say("all good", chunk=3))
SESSION = "{session}"  # replaced by the module server's session id


def body(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def request(msg_id: Any, method: str, params: Any = None, *, with_params: bool = True) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if with_params:
        message["params"] = params
    return body(message)


@attrs.frozen
class Case:
    name: str
    raw: bytes
    code: int | None  # None: a notification or a response, nothing is answered
    reasons: tuple[str, ...] = ()  # the accepted data.reason values ("" for none)
    reply_id: Any = "same"  # the id the error must carry: "same" as sent, or a value
    xfail: str = ""


NESTED = b'{"jsonrpc":"2.0","id":"deep","method":"agent/sendMessage","params":{"prompt":' \
    + b"[" * 100_000 + b"]" * 100_000 + b"}}"
GARBAGE = {"k" * 200: [[["x" * 1000] * 50] * 20] * 5, "n": [[[[[[[[[[[[1]]]]]]]]]]]] * 500}

CASES = [
    Case("not_json", b"{not json", -32700, ("invalid_request",), None),
    Case("invalid_utf8", b"\xff\xfe\x00{", -32700, ("invalid_request",), None),
    Case("truncated_json", b'{"jsonrpc":"2.0","id":1,"method":"agent/st', -32700, ("invalid_request",), None),
    Case("json_array_batch", b'[{"jsonrpc":"2.0","id":2,"method":"agent/status"}]', -32600, ("invalid_request",), None),
    Case("json_scalar", b"42", -32600, ("invalid_request",), None),
    Case("missing_jsonrpc", body({"id": 3, "method": "agent/status", "params": {}}), -32600, ("invalid_request",)),
    Case("jsonrpc_1_0", body({"jsonrpc": "1.0", "id": 4, "method": "agent/status"}), -32600, ("invalid_request",)),
    Case("method_not_a_string", body({"jsonrpc": "2.0", "id": 5, "method": ["agent/status"]}), -32600,
         ("invalid_request",)),
    Case("params_a_string", request(6, "agent/sendMessage", "hello"), -32602, ("invalid_params",)),
    Case("params_null", request(7, "agent/sendMessage", None), -32602, ("invalid_params", "empty_prompt")),
    Case("no_params", request(8, "agent/sendMessage", with_params=False), -32602, ("invalid_params", "empty_prompt")),
    Case("params_an_array", request(9, "session/list", [1, 2]), -32602, ("invalid_params",)),
    Case("params_a_number", request(10, "agent/status", 5), -32602, ("invalid_params",)),
    Case("unknown_method", request(11, "agent/fly", {}), -32601, ("",)),
    Case("unknown_dollar_request", request(12, "$/fly", {}), -32601, ("",)),
    Case("empty_method", request(13, "", {}), -32601, ("",)),
    Case("session_id_an_array", request(14, "agent/status", {"sessionId": []}), -32602, ("invalid_params",)),
    Case("model_provider_a_number", request(15, "agent/setModel", {"model": {"provider": 5}}), -32602,
         ("invalid_params",)),
    Case("session_id_nan", b'{"jsonrpc":"2.0","id":16,"method":"session/get","params":{"sessionId":NaN}}',
         -32602, ("invalid_params",)),
    Case("prompt_huge_nested_garbage", request(17, "agent/sendMessage", {"sessionId": SESSION, "prompt": GARBAGE}),
         -32602, ("invalid_params",)),
    Case("attachments_two_megabytes_of_string",
         request(18, "agent/sendMessage", {"sessionId": SESSION, "prompt": "x", "attachments": "y" * 2_000_000}),
         -32602, ("invalid_params",)),
    Case("mode_unknown", request(19, "agent/sendMessage", {"sessionId": SESSION, "prompt": "x", "mode": "later"}),
         -32602, ("invalid_params",)),
    Case("sendmessage_as_notification",
         body({"jsonrpc": "2.0", "method": "agent/sendMessage", "params": {"prompt": 5}}),
         None),
    Case("garbage_notification", body({"jsonrpc": "2.0", "method": "agent/garbage", "params": "zzz"}), None),
    Case("cancel_request_object_id",
         body({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": {"x": [1]}}}),
         None),
    Case("cancel_request_array_id", body({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": [1]}}),
         None),
    Case("cancel_request_without_params", body({"jsonrpc": "2.0", "method": "$/cancelRequest"}), None),
    Case("cancel_request_params_a_string", body({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": "x"}), None),
    Case("folders_event_a_number", body({"jsonrpc": "2.0", "method": "workspace/didChangeWorkspaceFolders",
                                         "params": {"event": 5}}), None),
    Case("response_to_nothing", body({"jsonrpc": "2.0", "id": "never-asked", "result": {"decision": "allow"}}), None),
    Case("error_response_to_nothing", body({"jsonrpc": "2.0", "id": "never-asked-2",
                                            "error": {"code": 1, "message": "x"}}), None),
    Case("id_an_object", body({"jsonrpc": "2.0", "id": {"a": 1}, "method": "agent/status", "params": {}}), -32600,
         ("invalid_request",), None),
    Case("nesting_deeper_than_the_recursion_limit", NESTED, -32700, ("invalid_request",), None),
]


# ---------------------------------------------------------------------- a server shared by the cases
@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    holder: dict[str, Any] = {"folder": tmp_path_factory.mktemp("malformed")}
    yield holder
    if "server" in holder:
        holder["server"].close()


@pytest.fixture
def server(shared: dict[str, Any]) -> RawServer:
    """The module's server, started again when a case killed it."""
    current: RawServer | None = shared.get("server")
    if current is None or current.proc.poll() is not None:
        if current is not None:
            current.close()
        current = shared["server"] = RawServer(shared["folder"], {"model": MODEL, "streamIntervalMs": 0})
        current.session = current.request("session/create", {})["result"]["id"]
    return current


def sent_id(raw: bytes) -> Any:
    try:
        return json.loads(raw)["id"]
    except (ValueError, KeyError, TypeError):
        return None


def assert_valid_prompt_completes(server: RawServer) -> None:
    """A prompt right after the bad message: its response is the next message, and it ends normally."""
    msg_id = server.send_request("agent/sendMessage", {"sessionId": server.session, "prompt": "still there?"})
    reply = server.read_message(10)
    assert reply is not None, "the server closed its output"
    assert reply.get("id") == msg_id and "result" in reply, f"unexpected message before the response: {reply}"
    done = server.read_until(run_complete_of(reply["result"]["runId"]))["params"]
    assert (done["finishReason"], done["text"]) == ("end_turn", "all good")
    # A barrier: whatever the run still sends (its session's `busy: false`) comes before this reply,
    # so the next case's first message is its own answer.
    assert server.request("agent/status", {})["result"]["busy"] is False


def check_error(case: Case, reply: dict[str, Any], raw: bytes) -> None:
    assert "error" in reply, f"{case.name}: expected an error, got {reply}"
    error = reply["error"]
    assert error["code"] == case.code, error
    expected_id = sent_id(raw) if case.reply_id == "same" else case.reply_id
    assert reply["id"] == expected_id
    message = error.get("message", "")
    assert message.strip() and "Traceback" not in message and 'File "' not in message, message
    assert "traceback" not in (error.get("data") or {}), error
    assert (error.get("data") or {}).get("reason", "") in case.reasons, error


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [])
    for c in CASES
])
def test_malformed_message_is_answered_and_the_server_goes_on(server: RawServer, case: Case):
    raw = case.raw.replace(SESSION.encode(), server.session.encode())
    server.write_raw(raw)
    if case.code is not None:
        reply = server.read_message(10)
        assert reply is not None, f"{case.name}: the server closed its output (exit {server.proc.wait(5)})"
        check_error(case, reply, raw)
    assert_valid_prompt_completes(server)


def test_unknown_fields_are_ignored(server: RawServer):
    params = {"sessionId": server.session, "prompt": "x", "colour": "blue", "attachments": [], "nested": {"a": [1]}}
    reply = server.request("agent/sendMessage", params)
    assert reply["result"]["accepted"] is True
    done = server.read_until(run_complete_of(reply["result"]["runId"]))["params"]
    assert done["finishReason"] == "end_turn"


# ---------------------------------------------------------------------- stdout carries only frames
def strict_frames(data: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """Every complete frame in `data` (and the incomplete rest); anything else fails the test."""
    decoder = ContentLength(max_frame=1 << 40)
    frames: list[dict[str, Any]] = []
    for item in decoder.feed(data):
        assert not isinstance(item, FrameError), f"stdout holds something that is not a frame: {item.message}"
        message = json.loads(item)
        assert message.get("jsonrpc") == "2.0", message
        frames.append(message)
    return frames, data[len(data) - decoder.pending:] if decoder.pending else b""


class StdoutRecorder:
    """Reads every byte the server writes to stdout and parses it strictly."""

    def __init__(self, server: RawServer) -> None:
        self.server = server
        self.data = b""
        self.eof = False

    def frames(self) -> list[dict[str, Any]]:
        return strict_frames(self.data)[0]

    def read_until(self, predicate: Callable[[list[dict[str, Any]]], bool],
                   timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        fd = self.server.proc.stdout.fileno()
        while not predicate(frames := self.frames()):
            assert not self.eof, "the server closed its output"
            left = deadline - time.monotonic()
            assert left > 0, "timed out"
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 1 << 16)
                self.eof = not chunk
                self.data += chunk
        return frames


def reply_to(msg_id: Any) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda frames: any(f.get("id") == msg_id and "method" not in f for f in frames)


def test_stdout_is_nothing_but_frames(workspace: Path):
    """A run with tools that print (bash echoes to stdout and stderr), a failing run and bad input."""
    (workspace / "a.txt").write_text("alpha\n")
    script = scripted(
        {"when": "tools", "step": 0, "events": [
            {"toolCall": {"name": "view", "input": {"file_path": "a.txt"}}},
            {"toolCall": {"name": "bash", "input": {"command": "echo to-stdout; echo to-stderr >&2"}}},
            {"toolCall": {"name": "view", "input": {"file_path": "../../outside.txt"}}},
        ]},
        {"when": "tools", "step": 1, "events": [{"text": "done with tools"}]},
        {"when": "fine", "events": [{"text": "fine"}]},
    )  # "unscripted" matches nothing: the run fails with agent_error
    server = RawServer(workspace, initialize=False)
    stdout = StdoutRecorder(server)
    try:
        init = server.send_request("initialize", {
            "processId": None, "capabilities": {}, "workspaceFolders": [{"uri": server.uri, "name": "ws"}],
            "initializationOptions": {"model": script, "permissions": {"mode": "allow"}},
        })
        stdout.read_until(reply_to(init))
        server.notify("initialized", {})
        create = server.send_request("session/create", {})
        session = next(f for f in stdout.read_until(reply_to(create)) if f.get("id") == create)["result"]["id"]
        server.write_raw(b"{not json")
        server.send_request("agent/fly", {})
        for run_id, prompt in (("tools", "tools"), ("broken", "unscripted"), ("fine", "fine")):
            server.send_request("agent/sendMessage", {"sessionId": session, "prompt": prompt, "runId": run_id})
        runs = ("tools", "broken", "fine")
        stdout.read_until(lambda frames: sum(run_complete_of(r)(f) for f in frames for r in runs) == len(runs))
        shutdown = server.send_request("shutdown")
        stdout.read_until(reply_to(shutdown))
        server.notify("exit")
        assert server.proc.wait(5) == 0
        stdout.read_until(lambda frames: stdout.eof)
        frames, rest = strict_frames(stdout.data)
        assert rest == b"", f"stdout ends with a partial frame: {rest[:200]!r}"
        ends = {f["params"]["runId"]: f["params"] for f in frames
                if any(run_complete_of(r)(f) for r in runs)}
        assert ends["tools"]["finishReason"] == "end_turn" and ends["fine"]["text"] == "fine"
        assert ends["broken"]["finishReason"] == "error"
        bash_result = next(f["params"] for f in frames if f.get("method") == "agent/notification"
                           and f["params"]["type"] == "tool_result" and f["params"]["name"] == "bash")
        assert "to-stdout" in bash_result["content"]  # the child's output went to the model, not to our stdout
    finally:
        server.close()


async def test_refusals_leave_no_traceback_in_the_log(start, capfd):
    """An answered error (here session_not_found) is not a fault: stderr gets no traceback for it."""
    client = await start({"model": {"provider": "echo"}})
    with pytest.raises(Exception):
        await client.send("no-such-session", "hi")
    await client.shutdown_session()
    assert "Traceback" not in capfd.readouterr().err
