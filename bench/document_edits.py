"""What the open-document mirror and the minimal edits cost (backend/documents.py), in-process.

Prints, for documents of 1k, 10k and 50k lines (~40 bytes a line):
  1. one keystroke's `didChange` applied to the mirror, at the top and at the end of the document (µs),
  2. `text_edits` (the diff sent as workspace/applyEdit) for one changed line, 100 changed lines
     spread over the file, and every line changed (ms), with the number of edits it made;
then, through the protocol (a raw stdio client that applies the edits to its buffer, sends the
didChange and saves on agent/saveDocument):
  3. an `edit` tool call's time, from its tool_call "running" to its tool_result, for a file open
     in the editor (workspace/applyEdit, didChange, agent/saveDocument) and for the same file closed
     (written on disk), p50 and p90 over EDITS calls each.
Usage: python bench/document_edits.py [--edits 40] (a run takes at most 50 steps)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accept_latency import Client

from crush_ls.backend.documents import Document, Documents, text_edits
from crush_ls.transport.framing import encode


def median_us(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def keystroke(documents: Documents, uri: str, line: int) -> Callable[[], None]:
    version = [1]

    def type_one() -> None:
        version[0] += 1
        position = {"line": line, "character": 4}
        documents.change(uri, version[0], [{"range": {"start": position, "end": position}, "text": "x"}])

    return type_one


def micro() -> None:
    print(f"{'lines':>6} {'keystroke top µs':>17} {'keystroke end µs':>17} {'1 line ms':>10} "
          f"{'100 lines ms':>13} {'all lines ms':>13} {'edits (1/100/all)':>18}")
    for lines in (1_000, 10_000, 50_000):
        text = "".join(f"    value_{n} = compute({n}, 'some text')\n" for n in range(lines))
        documents = Documents()
        uri = "file:///bench/a.py"
        documents.open(uri, 1, text)
        top = median_us(keystroke(documents, uri, 0), 200)
        end = median_us(keystroke(documents, uri, lines - 1), 200)
        one = text.replace(f"value_{lines // 2} =", f"renamed_{lines // 2} =")
        spread = "".join(line.replace("compute", "calc") if n % (lines // 100) == 0 else line
                         for n, line in enumerate(text.splitlines(keepends=True)))
        every = text.replace("compute", "calc")
        counts, times = [], []
        for new in (one, spread, every):
            counts.append(len(text_edits(text, new, "utf-16")))
            times.append(median_us(lambda new=new, text=text: text_edits(text, new, "utf-16"), 5) / 1000)
        print(f"{lines:>6} {top:>17.1f} {end:>17.1f} {times[0]:>10.2f} {times[1]:>13.2f} {times[2]:>13.2f} "
              f"{'/'.join(map(str, counts)):>18}")


class Editor(Client):
    """A raw client with one buffer: applies workspace/applyEdit, answers agent/saveDocument."""

    def __init__(self, cmd: list[str], path: Path) -> None:
        self.path = path
        self.buffer = Document(path.as_uri(), path, 1, path.read_text())
        self.running: dict[str, float] = {}
        self.took: list[float] = []
        self.done = threading.Event()
        super().__init__(cmd)

    def _on_body(self, body: bytes, now: float) -> None:
        message = json.loads(body)
        if "id" in message and "method" in message:
            self._answer(message)
        else:
            super()._on_body(body, now)

    def _answer(self, message: dict[str, Any]) -> None:
        result: dict[str, Any] = {"saved": True}
        if message["method"] == "workspace/applyEdit":
            (change,) = message["params"]["edit"]["documentChanges"]
            changes = [{"range": e["range"], "text": e["newText"]} for e in reversed(change["edits"])]
            for one in changes:
                self.buffer.apply(one, "utf-16")
            self.buffer.version += 1
            self.notify("textDocument/didChange", {
                "textDocument": {"uri": self.buffer.uri, "version": self.buffer.version}, "contentChanges": changes})
            result = {"applied": True}
        elif message["method"] == "agent/saveDocument":
            self.path.write_text(self.buffer.text)
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(encode({"jsonrpc": "2.0", "id": message["id"], "result": result}))
            self.proc.stdin.flush()

    def on_notification(self, params: dict[str, Any], received: float) -> None:
        if params["type"] == "tool_call" and params["toolCall"]["status"] == "running":
            self.running[params["toolCall"]["id"]] = received
        elif params["type"] == "tool_result" and params["toolCallId"] in self.running:
            self.took.append(received - self.running.pop(params["toolCallId"]))
            if params["isError"]:
                print("tool error:", params["content"], file=sys.stderr)
        elif params["type"] == "run_complete":
            self.done.set()

    def initialize(self, folder: Path, options: Any = None) -> float:
        caps = {"workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True}},
                "experimental": {"crush": {"saveDocument": True}}}
        self.request("initialize", {"capabilities": caps, "initializationOptions": options,
                                    "workspaceFolders": [{"uri": folder.as_uri(), "name": "w"}]})
        self.notify("initialized", {})
        return 0.0


def edit_calls(edits: int, open_in_editor: bool) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "app.py"
        path.write_text("".join(f"line_{n} = {n}\n" for n in range(2000)) + "value = 0\n")
        calls = [{"name": "view", "input": {"file_path": "app.py", "limit": 1}}] + [
            {"name": "edit", "input": {"file_path": "app.py", "old_string": f"value = {n}\n",
                                       "new_string": f"value = {n + 1}\n"}} for n in range(edits)]
        responses = [{"step": n, "events": [{"toolCall": call}]} for n, call in enumerate(calls)]
        script = {"responses": [*responses, {"step": len(calls), "events": [{"text": "done"}]}]}
        editor = Editor([sys.executable, "-m", "crush_ls"], path)
        try:
            editor.initialize(folder, {"model": {"provider": "scripted", "script": script},
                                       "permissions": {"mode": "allow"}})
            if open_in_editor:
                editor.notify("textDocument/didOpen", {"textDocument": {
                    "uri": path.as_uri(), "languageId": "python", "version": 1, "text": editor.buffer.text}})
            _, session = editor.request("session/create", {})
            editor.request("agent/sendMessage", {"sessionId": session["id"], "prompt": "edit"})
            assert editor.done.wait(120), "the run did not complete"
            assert path.read_text().endswith(f"value = {edits}\n"), "the edits did not all land"
        finally:
            editor.close()
        return editor.took[1:]  # the view's time is not an edit's


def through_the_protocol(edits: int) -> None:
    for label, opened in (("open in the editor", True), ("not open (disk)", False)):
        took = sorted(edit_calls(edits, opened))
        p50, p90 = took[len(took) // 2] * 1000, took[int(len(took) * 0.9)] * 1000
        print(f"edit tool call, {label:>18}: p50 {p50:6.2f} ms  p90 {p90:6.2f} ms  ({len(took)} calls)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--edits", type=int, default=40)
    args = parser.parse_args()
    micro()
    print()
    through_the_protocol(args.edits)


if __name__ == "__main__":
    main()
