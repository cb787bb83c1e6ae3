"""`agent/sendMessage.context` (PROTOCOL "Editor context"): stored with the prompt, read by the model."""

from __future__ import annotations

import pytest
from pygls.exceptions import JsonRpcInvalidParams

from tests.context.editor import DiagnosingEditor
from tests.providers import fake_openai as openai

APP = "import os\n\ndef main():\n    return 1\n"
UNSAVED = "import os\n\ndef main():\n    return 42  # not saved\n"


def openai_model(server: openai.FakeOpenAI) -> dict[str, object]:
    return {"model": {"provider": "openai", "model": "gpt-test", "baseUrl": server.base_url, "apiKey": "sk-test"}}


def lines(first: int, last: int) -> dict[str, object]:
    """An LSP Range of whole lines `first`..`last` (zero-based), ending at the start of the next."""
    return {"start": {"line": first, "character": 0}, "end": {"line": last + 1, "character": 0}}


def user_text(body: dict[str, object]) -> str:
    message = body["messages"][-1]  # type: ignore[index]
    assert message["role"] == "user"
    content = message["content"]
    return content if isinstance(content, str) else "\n".join(p["text"] for p in content if p["type"] == "text")


async def test_context_items_are_stored_shown_and_read_by_the_model(diagnosing, workspace):
    (workspace / "app.py").write_text(APP)
    (workspace / "notes.md").write_text("# Notes\nship it\n")
    outside = workspace.parent / "lib.py"
    outside.write_text("def helper(): ...\n")
    problem = {"range": {"start": {"line": 3, "character": 11}, "end": {"line": 3, "character": 13}},
               "severity": 2, "source": "pyright", "message": "Literal is\nnot used"}
    with openai.FakeOpenAI([openai.text_stream("Seen.")]) as server:
        client: DiagnosingEditor = await diagnosing(openai_model(server))
        client.open(workspace / "app.py", UNSAVED)  # the buffer has unsaved text: that is what is sent
        client.problems[(workspace / "app.py").as_uri()] = [problem]
        session = await client.new_session()
        context = [
            {"uri": (workspace / "app.py").as_uri(), "kind": "file"},
            {"uri": (workspace / "app.py").as_uri(), "kind": "selection", "range": lines(2, 3)},
            {"uri": (workspace / "app.py").as_uri(), "kind": "diagnostics"},
            {"uri": (workspace / "notes.md").as_uri(), "kind": "file"},  # not open: the disk
            {"uri": outside.as_uri(), "kind": "selection", "range": lines(0, 0), "text": "def helper(): ...\n"},
        ]
        run = (await client.send(session, "explain this", context=context))["runId"]
        done = await client.completed(run)
    assert done["finishReason"] == "end_turn"

    user = (await client.session_messages(session))[0]
    assert user["role"] == "user"
    assert user["parts"][0] == {"type": "text", "text": "explain this"}
    parts = user["parts"][1:]
    assert [(p["type"], p["kind"], p["path"]) for p in parts] == [
        ("context", "file", "app.py"), ("context", "selection", "app.py"), ("context", "diagnostics", "app.py"),
        ("context", "file", "notes.md"), ("context", "selection", str(outside))]
    assert parts[0]["text"] == UNSAVED
    assert parts[1]["text"] == "def main():\n    return 42  # not saved\n" and parts[1]["range"] == lines(2, 3)
    assert parts[2]["text"] == "warning app.py:4:12 [pyright] Literal is not used"
    assert parts[3]["text"] == "# Notes\nship it\n"
    assert parts[4]["text"] == "def helper(): ...\n"
    assert client.diagnostics_requests == [{"uris": [(workspace / "app.py").as_uri()]}]

    text = user_text(server.requests[0])
    assert text.startswith("explain this\n")
    assert "<editor_context>\n<file path='app.py'>\n" + UNSAVED + "</file>" in text
    assert "<selection path='app.py' lines='3-4'>\ndef main():\n    return 42  # not saved\n</selection>" in text
    assert "<diagnostics path='app.py'>\nwarning app.py:4:12 [pyright] Literal is not used\n</diagnostics>" in text
    assert f"<selection path='{outside}' lines='1-1'>" in text and text.endswith("</editor_context>")


async def test_a_long_file_is_cut_and_marked(start, workspace):
    (workspace / "big.txt").write_text("x" * 50_000)
    (workspace / "huge.txt").write_text("y" * 1_000_000)  # read only as far as the limit needs
    (workspace / "huge.py").write_text("pass\n" * 200_000 + "def last(): ...\n")
    client = await start({"model": {"provider": "echo"}})
    session = await client.new_session()
    context = [{"uri": (workspace / "big.txt").as_uri(), "kind": "file"},
               {"uri": (workspace / "huge.txt").as_uri(), "kind": "file"},
               {"uri": (workspace / "huge.py").as_uri(), "kind": "selection",
                "range": {"start": {"line": 200_000, "character": 0}, "end": {"line": 200_000, "character": 5}}}]
    run = await client.send(session, "size?", context=context)
    await client.completed(run["runId"])
    big, huge, last = (await client.session_messages(session))[0]["parts"][1:]
    assert big["truncated"] is True
    assert big["text"] == "x" * 32_000 + "\n[cut: 18000 more characters]"
    assert huge["text"] == "y" * 32_000 + "\n[cut: at least 96000 more characters]"
    assert last["text"] == "def last(): ...\n" and "truncated" not in last


async def test_an_unreadable_file_says_so_and_the_prompt_runs(start, workspace):
    client = await start({"model": {"provider": "echo"}})
    session = await client.new_session()
    run = await client.send(session, "hi", context=[{"uri": (workspace / "gone.py").as_uri(), "kind": "file"}])
    done = await client.completed(run["runId"])
    assert done["finishReason"] == "end_turn"
    part = (await client.session_messages(session))[0]["parts"][1]
    assert part["text"].startswith("(cannot read gone.py: ")


@pytest.mark.parametrize("declare", [False])
async def test_bad_context_items_are_refused_naming_the_item(diagnosing, workspace, declare):
    client = await diagnosing({"model": {"provider": "echo"}}, declare=declare)
    session = await client.new_session()
    inside = (workspace / "a.py").as_uri()
    outside = (workspace.parent / "secret.txt").as_uri()
    cases = [
        ([{"uri": inside, "kind": "tab"}], "'tab' is not one of 'file', 'selection', 'diagnostics' "
                                           "@ params.context[0].kind"),
        ([{"uri": inside, "kind": "file"}, {"uri": 5, "kind": "file"}], "expected string, got integer "
                                                                         "@ params.context[1].uri"),
        ([{"uri": "untitled:Untitled-1", "kind": "file"}], "is not a file: URI @ params.context[0].uri"),
        ([{"uri": inside, "kind": "selection"}], "a selection needs its range @ params.context[0].range"),
        ([{"uri": inside, "kind": "selection", "range": {"start": {"line": 3, "character": 0},
                                                          "end": {"line": 1, "character": 0}}}],
         "the range ends before it starts @ params.context[0].range"),
        ([{"uri": outside, "kind": "file"}], "outside the workspace folder"),
        ([{"uri": inside, "kind": "diagnostics"}], "need a client that answers agent/diagnostics"),
        ([{"uri": inside, "kind": "file"}] * 33, "at most 32 context items, got 33 @ params.context"),
    ]
    for context, message in cases:
        with pytest.raises(JsonRpcInvalidParams) as refused:
            await client.send(session, "hi", context=context)
        assert message in refused.value.message, (context, refused.value.message)
    assert await client.session_messages(session) == []  # nothing stored, nothing started
    assert not [n for n in client.notes if n.get("sessionId") == session and n["type"] != "session_updated"]


async def test_context_alone_is_a_prompt_and_is_echoed_nowhere_else(start, workspace):
    (workspace / "a.py").write_text("a = 1\n")
    client = await start({"model": {"provider": "echo"}})
    session = await client.new_session()
    run = await client.send(session, "", context=[{"uri": (workspace / "a.py").as_uri(), "kind": "file"}])
    assert (await client.completed(run["runId"]))["finishReason"] == "end_turn"
