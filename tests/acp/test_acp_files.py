"""`crush-ls acp`: view/write/edit/multiedit go through fs/* when the client serves it; bash stays local."""

from __future__ import annotations

from .harness import agent, folded, say, tool

EDIT_UNSAVED = (
    tool("view", {"file_path": "notes.txt"}, step=0),
    tool("edit", {"file_path": "notes.txt", "old_string": "unsaved line", "new_string": "edited line"}, step=1),
    tool("write", {"file_path": "new.txt", "content": "brand new\n"}, step=2),
    tool("bash", {"command": "cat notes.txt"}, step=3),
    say("done", step=4),
)


async def test_tools_read_the_unsaved_buffer_and_write_through_the_editor(tmp_path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("saved line\n")
    async with agent(tmp_path, *EDIT_UNSAVED, args=("--yolo",)) as h:
        h.client.buffers[str(notes)] = "unsaved line\n"  # the editor holds changes not on disk
        await h.initialize(fs=True)
        sid = await h.new_session()
        assert (await h.prompt(sid, "edit notes")).stop_reason == "end_turn"
        view, edit, write, bash = folded(h.client.of(sid))["calls"].values()
        assert "unsaved line" in view["content"][0]["content"]["text"]
        assert edit["status"] == "completed"
        assert edit["content"] == [{"type": "diff", "path": str(notes), "old_text": "unsaved line",
                                    "new_text": "edited line"}]
        assert h.client.writes == [(str(notes), "edited line\n"), (str(tmp_path / "new.txt"), "brand new\n")]
        assert notes.read_text() == "saved line\n"  # the disk is the editor's business
        assert not (tmp_path / "new.txt").exists()
        assert write["status"] == "completed"
        assert "saved line" in bash["content"][0]["content"]["text"]  # bash runs locally, on the disk
        assert str(notes) in h.client.reads


async def test_a_client_without_fs_is_never_asked_for_files(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("on disk\n")
    responses = (tool("view", {"file_path": "notes.txt"}, step=0),
                 tool("write", {"file_path": "out.txt", "content": "x\n"}, step=1), say("ok", step=2))
    async with agent(tmp_path, *responses, args=("--yolo",)) as h:
        await h.initialize(fs=False)
        sid = await h.new_session()
        assert (await h.prompt(sid, "look")).stop_reason == "end_turn"
        view = next(iter(folded(h.client.of(sid))["calls"].values()))
        assert "on disk" in view["content"][0]["content"]["text"]
        assert h.client.reads == [] and h.client.writes == []
        assert (tmp_path / "out.txt").read_text() == "x\n"
