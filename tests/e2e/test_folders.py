"""Workspace folders: added, removed, added again, and folders that cannot be opened."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcException

from tests.e2e.runs import assert_runs_end_once


def folders_changed(client, added: list[str], removed: list[str]) -> None:
    def folders(uris: list[str]) -> list[types.WorkspaceFolder]:
        return [types.WorkspaceFolder(uri=uri, name="ws") for uri in uris]

    client.workspace_did_change_workspace_folders(types.DidChangeWorkspaceFoldersParams(
        event=types.WorkspaceFoldersChangeEvent(added=folders(added), removed=folders(removed))))


async def create_when_open(client, within: float = 5.0) -> dict:
    """session/create until the old workspace has closed (no notification marks that moment)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await client.call("session/create", {"workspace": client.ws_uri})
        except JsonRpcException as exc:
            if exc.data["reason"] != "workspace_closing" or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.02)


async def test_a_folder_removed_and_added_again_is_open_afterwards(start, workspace: Path):
    client = await start({"model": {"provider": "echo"}})
    session = await client.new_session()
    folders_changed(client, added=[client.ws_uri], removed=[client.ws_uri])
    await create_when_open(client)
    kept = await client.call("session/get", {"workspace": client.ws_uri, "sessionId": session})
    assert kept["id"] == session
    run_id = (await client.send(session, "still here"))["runId"]
    assert (await client.completed(run_id))["finishReason"] == "end_turn"
    assert_runs_end_once(client.notes)


async def test_a_folder_that_cannot_be_opened_does_not_keep_the_others_closed(start, tmp_path: Path):
    broken, good = tmp_path / "broken", tmp_path / "good"
    broken.mkdir()
    good.mkdir()
    (broken / ".crush").write_text("a file where the data directory should be\n")
    client = await start({"model": {"provider": "echo"}}, folders=[broken, good])
    created = await client.call("session/create", {"workspace": good.as_uri()})
    assert created["title"] == "New Session"
    try:
        await client.call("session/list", {"workspace": broken.as_uri()})
    except JsonRpcException as exc:
        assert exc.data["reason"] == "workspace_not_found"
        assert ".crush" in str(exc)  # says why, not just "not open"
    else:
        raise AssertionError("a folder that could not be opened answered")
    folders_changed(client, added=[], removed=[broken.as_uri()])
    try:
        await client.call("session/list", {"workspace": broken.as_uri()})
    except JsonRpcException as exc:
        assert "is not open" in str(exc)  # removed: its old failure is no longer the reason
    else:
        raise AssertionError("a removed folder answered")


async def test_a_folder_removed_added_and_removed_again_stays_closed(start):
    client = await start({"model": {"provider": "echo"}})
    await client.new_session()
    folders_changed(client, added=[client.ws_uri], removed=[client.ws_uri])
    folders_changed(client, added=[], removed=[client.ws_uri])
    deadline = time.monotonic() + 5
    while True:
        try:
            await client.call("session/list", {"workspace": client.ws_uri})
        except JsonRpcException as exc:
            assert exc.data["reason"] == "workspace_not_found"
            break
        assert time.monotonic() < deadline, "the workspace never closed"
        await asyncio.sleep(0.02)

