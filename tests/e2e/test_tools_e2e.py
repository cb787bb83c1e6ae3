"""Tools through the real protocol: a view-then-edit turn with its diff and
history, and `bash` killed with its whole process group when the run is
cancelled or the server shuts down."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from tests.e2e.runs import assert_runs_end_once, start_sleeper, steps
from tests.processes import assert_all_dead


def file_history(folder: Path, path: Path) -> list[str | None]:
    db = sqlite3.connect(folder / ".crush" / "crush-ls.db")
    try:
        rows = db.execute("SELECT content FROM files WHERE path=? ORDER BY version", (str(path),)).fetchall()
    finally:
        db.close()
    return [row[0] for row in rows]


async def test_view_then_edit_reports_the_diff_and_keeps_history(start, workspace):
    target = workspace / "app.py"
    target.write_text("def main():\n    return 1\n")
    model = steps(
        {"name": "view", "input": {"file_path": "app.py"}},
        {"name": "edit", "input": {"file_path": "app.py", "old_string": "return 1", "new_string": "return 2"}},
    )
    client = await start({"model": model, "permissions": {"mode": "allow"}})
    session = await client.new_session()
    run_id = (await client.send(session, "fix it"))["runId"]
    complete = await client.completed(run_id)
    assert complete["finishReason"] == "end_turn" and complete["text"] == "done"

    viewed, edited = [n for n in client.of_run(run_id) if n["type"] == "tool_result"]
    assert not viewed["isError"] and "return 1" in viewed["content"]
    assert not edited["isError"], edited["content"]
    assert edited["metadata"]["path"] == "app.py"
    assert "-    return 1\n+    return 2\n" in edited["metadata"]["diff"]
    assert target.read_text() == "def main():\n    return 2\n"
    await client.shutdown_session()
    real = Path(os.path.realpath(target))
    assert file_history(workspace, real) == ["def main():\n    return 1\n", "def main():\n    return 2\n"]


async def test_cancelling_the_run_kills_the_command_group(start, workspace):
    client, session, run_id, pids = await start_sleeper(start, workspace)
    await client.call("agent/cancel", {"workspace": client.ws_uri, "sessionId": session})
    complete = await client.completed(run_id, timeout=5)
    assert complete["finishReason"] == "canceled"
    await assert_all_dead(pids[0], pids)
    statuses = [n["toolCall"]["status"] for n in client.of_run(run_id) if n["type"] == "tool_call"]
    assert statuses == ["pending", "running", "canceled"]
    assert_runs_end_once(client.notes)


async def test_shutdown_kills_a_running_command(start, workspace):
    client, _session, run_id, pids = await start_sleeper(start, workspace)
    await asyncio.wait_for(client.shutdown_session(), 10)
    assert (await client.completed(run_id, timeout=1))["finishReason"] == "canceled"
    await assert_all_dead(pids[0], pids)
