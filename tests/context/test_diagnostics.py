"""The `diagnostics` tool and an edit's diagnostics, asked of the client with `agent/diagnostics` (PROTOCOL 4)."""

from __future__ import annotations

import time
from typing import Any

from tests.context.editor import DiagnosingEditor
from tests.documents.editor import edit, run, steps, view

BROKEN = {"range": {"start": {"line": 0, "character": 4}, "end": {"line": 0, "character": 5}},
          "severity": 1, "source": "pyright", "code": "reportUndefinedVariable", "message": '"y" is not defined'}


def diagnostics(path: str | None = None) -> dict[str, Any]:
    return {"name": "diagnostics", "input": {"file_path": path} if path else {}}


async def test_the_tool_asks_the_editor_for_a_file_and_for_the_workspace(diagnosing, workspace):
    (workspace / "a.py").write_text("x = y\n")
    client: DiagnosingEditor = await diagnosing(steps(diagnostics("a.py"), diagnostics()))
    a, b, elsewhere = (workspace / "a.py").as_uri(), (workspace / "b.py").as_uri(), "file:///usr/lib/x.py"
    client.problems = {a: [BROKEN], b: [{**BROKEN, "severity": 2, "message": "unused"}], elsewhere: [BROKEN]}
    one, every = await run(client)
    assert (one["isError"], one["content"]) == (
        False, '1 diagnostic in a.py:\nerror a.py:1:5 [pyright][reportUndefinedVariable] "y" is not defined')
    assert not every["isError"]
    assert every["content"] == ('2 diagnostics in the workspace:\n'
                                'error a.py:1:5 [pyright][reportUndefinedVariable] "y" is not defined\n'
                                'warning b.py:1:5 [pyright][reportUndefinedVariable] unused')  # errors first
    assert client.diagnostics_requests == [{"uris": [a]}, {}]


async def test_without_the_capability_the_tool_is_not_offered(diagnosing, workspace):
    client: DiagnosingEditor = await diagnosing(steps(diagnostics("a.py")), declare=False)
    (result,) = await run(client)
    assert result["isError"] and result["content"].startswith("Unknown tool 'diagnostics'. Available: ")
    assert "diagnostics" not in result["content"].removeprefix("Unknown tool 'diagnostics'")
    assert client.diagnostics_requests == []


async def test_an_editor_error_or_a_bad_answer_is_a_failed_call_and_the_run_goes_on(diagnosing, workspace):
    client: DiagnosingEditor = await diagnosing(steps(diagnostics(), diagnostics(), text="still here"))
    answers = iter([{"items": [{"uri": "file:///a.py", "diagnostics": [{"message": "no range"}]}]}])

    def answer(params: dict[str, Any]) -> Any:
        return next(answers, None) or (_ for _ in ()).throw(RuntimeError("language server crashed"))

    client.answer = answer
    session = await client.new_session()
    run_id = (await client.send(session, "go"))["runId"]
    done = await client.completed(run_id)
    malformed, failed = [n for n in client.of_run(run_id) if n["type"] == "tool_result"]
    assert malformed["isError"] and "malformed: required field missing @ result.items[0].diagnostics[0].range" \
        in malformed["content"]
    assert failed["isError"] and "language server crashed" in failed["content"]
    assert (done["finishReason"], done["text"]) == ("end_turn", "still here")


async def test_an_edit_reports_the_files_diagnostics_once_the_editor_has_checked_it(diagnosing, workspace):
    target = workspace / "app.py"
    target.write_text("x = 1\n")
    client: DiagnosingEditor = await diagnosing(steps(view("app.py"), edit("app.py", "x = 1", "x = y")))
    client.open(target)
    # A language server: 0.5 s after each change, "y" is undefined in the new text.
    client.after_change = lambda uri, text: [BROKEN] if "y" in text else []
    started = time.monotonic()
    _viewed, edited = await run(client)
    took = time.monotonic() - started
    assert not edited["isError"], edited["content"]
    assert edited["content"].endswith(
        'Diagnostics of the file after the edit:\n'
        'error app.py:1:5 [pyright][reportUndefinedVariable] "y" is not defined')
    asked = [r for r in client.diagnostics_requests if r == {"uris": [target.as_uri()]}]
    assert 2 <= len(asked) == len(client.diagnostics_requests)  # before the check landed, then after
    assert took < 10


async def test_an_edit_that_changes_no_diagnostics_waits_a_bounded_time(diagnosing, workspace):
    (workspace / "b.py").write_text("b = 1\n")
    client: DiagnosingEditor = await diagnosing(steps(view("b.py"), edit("b.py", "b = 1", "b = 2")))
    _viewed, edited = await run(client)  # not open: written to disk; the editor has nothing to say of it
    assert edited["content"].endswith("No diagnostics in the file after the edit.")
    assert 2 <= len(client.diagnostics_requests) <= 8  # asked every 0.3 s for at most 2 s
