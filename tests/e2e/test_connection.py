"""The connection on the raw wire: lifecycle order, ids, cancels, framing faults, limits, a slow reader."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from crush_ls.transport.framing import encode
from tests.conftest import read_db, scripted
from tests.e2e.runs import finish_reason
from tests.raw import RawServer, run_complete_of


def initialize_params(raw: RawServer) -> dict:
    return {"processId": None, "capabilities": {}, "workspaceFolders": [{"uri": raw.uri, "name": "ws"}],
            "initializationOptions": {"model": {"provider": "echo"}}}


# ---------------------------------------------------------------------- before initialize
def test_requests_before_initialize_are_refused_and_change_nothing(workspace: Path):
    raw = RawServer(workspace, initialize=False)
    try:
        for method, params in (("session/list", {}), ("session/create", {"title": "early"}),
                               ("agent/status", {}), ("shutdown", None), ("x/unknown", {})):
            error = raw.request(method, params)["error"]
            assert (error["code"], error["data"]["reason"]) == (-32002, "server_not_initialized"), (method, error)
        raw.notify("initialized", {})  # a notification before initialize is dropped
        assert "result" in raw.request("initialize", initialize_params(raw))
        raw.notify("initialized", {})
        assert raw.request("session/list", {})["result"] == {"sessions": []}  # the early create did nothing
        session = raw.request("session/create", {})["result"]["id"]
        assert raw.request("agent/sendMessage", {"sessionId": session, "prompt": "hello"})["result"]["accepted"]
    finally:
        raw.close()


# ---------------------------------------------------------------------- framing faults (issue 15, item 8)
def status_request(msg_id: str) -> bytes:
    return encode({"jsonrpc": "2.0", "id": msg_id, "method": "agent/status", "params": {}})


FRAMING_FAULTS = {
    "missing_header": json.dumps({"jsonrpc": "2.0", "id": "lost", "method": "agent/status"}).encode(),
    "no_content_length": b"Content-Type: application/json\r\n\r\n{}",
    "negative_length": b"Content-Length: -5\r\n\r\n{}",
    "plus_length": b"Content-Length: +2\r\n\r\n{}",
    "non_numeric_length": b"Content-Length: twelve\r\n\r\n{}",
    "lf_only_line_ends": b"Content-Length: 2\n\n{}",
    "header_line_without_colon": b"Content-Length 2\r\n\r\n{}",
    "nul_bytes_before_the_header": b"\0\0\0\0" + status_request("after-nul"),
    "length_of_4300_digits": b"Content-Length: " + b"7" * 4300 + b"\r\n\r\n{}",
    "no_header_end_at_all": b"z" * 100_000,
}


def answers_and_parse_errors(raw: RawServer, ids: set[Any]) -> tuple[dict[Any, dict], int]:
    start = len(raw.received)
    raw.read_until(lambda m: ids <= {r.get("id") for r in raw.received[start:] if "method" not in r}, timeout=20)
    seen = raw.received[start:]
    errors = sum(1 for m in seen if m.get("id") is None and m.get("error", {}).get("code") == -32700)
    return {m["id"]: m for m in seen if m.get("id") in ids}, errors


def test_after_each_framing_fault_one_parse_error_and_the_server_keeps_serving(workspace: Path):
    raw = RawServer(workspace, {"model": {"provider": "echo"}})
    try:
        for name, fault in FRAMING_FAULTS.items():
            raw.write_bytes(fault)
            ids = {f"{name}-{i}" for i in range(20)}
            raw.write_bytes(b"".join(status_request(i) for i in sorted(ids)))
            if name == "nul_bytes_before_the_header":
                ids.add("after-nul")
            answers, parse_errors = answers_and_parse_errors(raw, ids)
            assert parse_errors == 1, name
            assert all("result" in answers[i] for i in ids), name
        assert raw.proc.poll() is None
    finally:
        raw.close()


# ---------------------------------------------------------------------- frame size limit (issue 15, item 9)
def test_a_frame_over_the_limit_is_refused_unbuffered_and_its_body_skipped(workspace: Path):
    raw = RawServer(workspace, {"model": {"provider": "echo"}}, env={"CRUSH_LS_MAX_FRAME": str(1 << 20)})
    try:
        session = raw.request("session/create", {})["result"]["id"]
        rss_before = rss_mb(raw.proc.pid)
        big = encode({"jsonrpc": "2.0", "id": "big", "method": "agent/sendMessage",
                      "params": {"sessionId": session, "prompt": "x" * (40 << 20)}})
        for start in range(0, len(big), 1 << 20):  # while it is read, answers come (the pipe must not fill)
            raw.write_bytes(big[start:start + (1 << 20)])
        ids = {f"after-{i}" for i in range(20)}
        raw.write_bytes(b"".join(status_request(i) for i in sorted(ids)))
        answers, _ = answers_and_parse_errors(raw, ids | {"big"})
        error = answers["big"]["error"]
        assert error["code"] == -32600 and "limit" in error["message"], error
        assert all("result" in answers[i] for i in ids)
        assert rss_mb(raw.proc.pid) - rss_before < 20, "the refused body was buffered"
        assert raw.request("agent/sendMessage", {"sessionId": session, "prompt": "small"})["result"]["accepted"]
    finally:
        raw.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# ---------------------------------------------------------------------- refusals and cancels (issue 15, item 12)
HOSTILE = [
    b"{not json",
    b"[1, 2]",
    json.dumps({"jsonrpc": "2.0", "id": "a", "method": "agent/sendMessage", "params": "hello"}).encode(),
    json.dumps({"jsonrpc": "2.0", "id": "b", "method": "agent/sendMessage",
                "params": {"sessionId": "ghost", "prompt": "x"}}).encode(),
    json.dumps({"jsonrpc": "2.0", "id": "c", "method": "agent/fly", "params": {}}).encode(),
    json.dumps({"jsonrpc": "2.0", "id": "d", "method": "session/get", "params": {"sessionId": 5}}).encode(),
    json.dumps({"jsonrpc": "2.0", "method": "agent/sendMessage", "params": {"prompt": 5}}).encode(),
    json.dumps({"jsonrpc": "2.0", "method": "workspace/didChangeWorkspaceFolders", "params": {"event": 5}}).encode(),
    json.dumps({"jsonrpc": "2.0", "id": "e", "method": "initialize", "params": {"capabilities": 7}}).encode(),
    json.dumps({"jsonrpc": "2.0", "id": "never-asked", "result": {}}).encode(),
]


def test_refusals_log_one_line_each_and_cancel_request_with_an_id_is_answered(workspace: Path, tmp_path: Path):
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as log_file:
        raw = RawServer(workspace, {"model": {"provider": "echo"}}, stderr=log_file)
        try:
            for _ in range(20):
                for body in HOSTILE:
                    raw.write_raw(body)
            cancel = raw.request("$/cancelRequest", {"id": "nothing-pending"})
            assert "result" in cancel or "error" in cancel
            raw.request("shutdown")
            raw.notify("exit")
            assert raw.proc.wait(10) == 0
        finally:
            raw.close()
    log = log_path.read_text()
    assert "Traceback" not in log, log[:3000]
    assert len(log.splitlines()) <= 2 * 20 * len(HOSTILE), "more than a line or two per refused message"


# ---------------------------------------------------------------------- ids (issue 15, item 16)
PERMISSIONS = {"experimental": {"crush": {"permissions": True}}}


def test_a_client_cancel_of_a_permission_request_is_a_deny_and_the_run_goes_on(workspace: Path):
    script = scripted({"events": [{"toolCall": {"name": "view", "input": {"file_path": "/etc/hostname"}}}]})
    raw = RawServer(workspace, {"model": script}, capabilities=PERMISSIONS)
    try:
        session = raw.request("session/create", {})["result"]["id"]
        run_id = raw.request("agent/sendMessage", {"sessionId": session, "prompt": "peek"})["result"]["runId"]
        asked = raw.read_until(lambda m: m.get("method") == "agent/requestPermission")
        raw.notify("$/cancelRequest", {"id": asked["id"]})
        done = raw.read_until(run_complete_of(run_id))["params"]
        assert done["finishReason"] == "end_turn"  # as for any deny (a cancel would end it `canceled`)
        notes = [m["params"] for m in raw.received if m.get("method") == "agent/notification"]
        assert [n["decision"] for n in notes if n["type"] == "permission_resolved"] == ["deny"]
        assert "Permission denied" in next(n["content"] for n in notes if n["type"] == "tool_result")
    finally:
        raw.close()


def test_a_response_shaped_message_never_answers_the_clients_own_request(workspace: Path):
    raw = RawServer(workspace, {"model": scripted({"events": [{"sleepMs": 3000}]})})
    try:
        session = raw.request("session/create", {})["result"]["id"]
        raw.request("agent/sendMessage", {"sessionId": session, "prompt": "long", "runId": "slow"})
        raw.read_until(lambda m: m.get("params", {}).get("type") == "run_started")
        delete = {"jsonrpc": "2.0", "id": "del", "method": "session/delete", "params": {"sessionId": session}}
        raw.write_together(delete, {"jsonrpc": "2.0", "id": "del", "result": {"injected": True}})
        reply = raw.read_until(lambda m: m.get("id") == "del" and "method" not in m)
        assert reply["result"] == {}
        assert raw.request("session/list", {})["result"] == {"sessions": []}
        assert [m for m in raw.received if m.get("id") == "del"] == [reply]
    finally:
        raw.close()


# ---------------------------------------------------------------------- a client that stops reading (item 7)
TEXT = "tok " * 10_000
BURSTS = scripted({"events": [{"text": TEXT, "chunkSize": 4}]})  # thousands of deltas per run, at once


def finished_in_storage(workspace: Path) -> int:
    return sum(1 for m in read_db(workspace)["messages"] if m["role"] == "assistant" and finish_reason(m))


def test_a_client_that_stops_reading_holds_memory_and_its_next_answer_is_not_behind_deltas(workspace: Path):
    raw = RawServer(workspace, {"model": BURSTS, "streamIntervalMs": 0}, stderr=subprocess.DEVNULL)
    try:
        sessions = [raw.request("session/create", {})["result"]["id"] for _ in range(20)]
        rss_at_start = rss_mb(raw.proc.pid)
        raw.write_together(*({"jsonrpc": "2.0", "id": f"send-{i}", "method": "agent/sendMessage",
                              "params": {"sessionId": s, "prompt": "go"}} for i, s in enumerate(sessions)))
        deadline = time.monotonic() + 120
        while finished_in_storage(workspace) < len(sessions):  # the client reads nothing meanwhile
            assert time.monotonic() < deadline, "the runs did not finish while the client was not reading"
            time.sleep(0.1)  # another process's progress: nothing to await
        rss_stalled = rss_mb(raw.proc.pid)
        status = raw.send_request("agent/status", {})
        read_before_answer = 0
        while not (raw.received and raw.received[-1].get("id") == status and "method" not in raw.received[-1]):
            raw.read_message(20)
            read_before_answer += len(json.dumps(raw.received[-1]))
        # Without a bound: 60 MB of deltas ahead of the answer, RSS +70 MB.
        assert read_before_answer < 4 << 20, f"{read_before_answer} bytes were queued ahead of the answer"
        assert rss_stalled - rss_at_start < 30, f"RSS grew {rss_stalled - rss_at_start:.1f} MB while stalled"
        notes = [m["params"] for m in raw.received if m.get("method") == "agent/notification"]
        assert [n["seq"] for n in notes] == list(range(1, len(notes) + 1))
        for i in range(len(sessions)):
            run_id = next(m["result"]["runId"] for m in raw.received if m.get("id") == f"send-{i}")
            of_run = [n for n in notes if n.get("runId") == run_id]
            assert [n["type"] for n in of_run].count("run_complete") == 1 and of_run[-1]["type"] == "run_complete"
            assert of_run[-1]["text"] == TEXT
            streamed = "".join(n["text"] for n in of_run if n["type"] == "text_delta")
            assert TEXT.startswith(streamed)  # joined while held; past the budget the rest is left out
    finally:
        raw.close()
