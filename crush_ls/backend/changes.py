"""agent/changes, agent/review, agent/rewind and agent/unrewind, from the session's file history.

Every version the edit tools (and `bash`, for files the session knows) keep
is a row of the history, in order. A row with a run is a change of that run
(and of its user message); a row without one is a state the agent found.
So, for a file and a range of runs:

- *before* is the row just before the range's first change of it (the file
  as the range found it; None: it did not exist);
- *after* is the range's last change of it.

A rewind hides the messages from a user message on; the changes of their
runs then drop out (rows whose message is hidden), and come back with the
unrewind. Everything is read from storage, so it all works after a restart.
Files open in the editor are read and written through the editor (`Files`,
as the edit tools do); the rest on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from ..protocol import shapes
from ..protocol.errors import HunkNotApplicable, InvalidParams, NothingToUnrewind
from ..storage import Session
from ..tools.base import EditorConflict
from ..tools.editing import write_locked
from ..tools.paths import ToolInputError
from ..tools.tracked import UNREADABLE, read_state
from . import hunks as hunk_text
from .workspace import Workspace

WRITERS = 8  # threads writing a rewind's files
MAX_TEXT = 1 << 20  # larger sides are `tooLarge`: no texts, diff or hunks
DECIDED = {"accept": "accepted", "reject": "rejected"}


@attrs.define
class PathChange:
    path: str  # absolute, as the history keeps it
    before: str | None
    after: str | None
    run_ids: list[str]

    @property
    def status(self) -> str:
        return "added" if self.before is None else "deleted" if self.after is None else "modified"


def _by_path(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["path"], []).append(row)
    return grouped


def _owned(row: dict[str, Any], run_id: str | None, from_seq: int | None) -> bool:
    """A visible change of the agent's, in the range asked for."""
    if row["run_id"] is None or row["hidden"]:
        return False
    return (run_id is None or row["run_id"] == run_id) and (from_seq is None or (row["message_seq"] or 0) >= from_seq)


def ranged_changes(rows: list[dict[str, Any]], run_id: str | None = None,
                   from_seq: int | None = None) -> list[PathChange]:
    """The files changed in the range, each with its state before and after; none changed back."""
    found = []
    for path, versions in _by_path(rows).items():
        inside = [i for i, row in enumerate(versions) if _owned(row, run_id, from_seq)]
        if not inside:
            continue
        before = versions[inside[0] - 1]["content"] if inside[0] > 0 else None
        after = versions[inside[-1]]["content"]
        if before != after:
            runs = list(dict.fromkeys(versions[i]["run_id"] for i in inside))
            found.append(PathChange(path, before, after, runs))
    return sorted(found, key=lambda change: change.path)


def relative(root: Path, path: str) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def change_to_wire(root: Path, change: PathChange, reviews: dict[tuple[str, str], str]) -> shapes.FileChange:
    rel = relative(root, change.path)
    sides = [s for s in (change.before, change.after) if s is not None]
    binary = any("\0" in s for s in sides)
    too_large = any(len(s) > MAX_TEXT for s in sides)
    wire: shapes.FileChange = {
        "path": rel, "uri": Path(change.path).as_uri(), "status": change.status,  # type: ignore[typeddict-item]
        "before": None, "after": None, "binary": binary, "tooLarge": too_large,
        "diff": "", "additions": 0, "removals": 0, "runIds": change.run_ids, "hunks": [],
    }
    if binary or too_large:
        return wire
    found = _hunks(rel, change.before, change.after)
    diff, additions, removals = hunk_text.unified(rel, found)
    wire["before"], wire["after"], wire["diff"] = change.before, change.after, diff
    wire["additions"], wire["removals"] = additions, removals
    wire["hunks"] = [h.to_wire(_status(reviews.get((change.path, h.id)))) for h in found]
    return wire


_HUNKS: OrderedDict[bytes, list[hunk_text.Hunk]] = OrderedDict()
HUNKS_KEPT = 512


def _hunks(rel: str, before: str | None, after: str | None) -> list[hunk_text.Hunk]:
    """Editors ask again after every run and review: the same texts give the same hunks. Kept by a
    digest of the texts (not the texts: a cache of them could hold gigabytes); never mutated."""
    digest = hashlib.blake2b(rel.encode("utf-8", "surrogatepass"), digest_size=20)
    for side in (before, after):  # each side: its length and text, or "-" for no file
        digest.update(b"-" if side is None else f"\0{len(side)}\0{side}".encode("utf-8", "surrogatepass"))
    key = digest.digest()
    found = _HUNKS.get(key)
    if found is None:
        found = _HUNKS[key] = hunk_text.hunks(rel, before, after)
        if len(_HUNKS) > HUNKS_KEPT:
            _HUNKS.popitem(last=False)
    else:
        _HUNKS.move_to_end(key)
    return found


def _status(decision: str | None) -> shapes.HunkStatus:
    return "accepted" if decision == "accept" else "rejected" if decision == "reject" else "pending"


# ---------------------------------------------------------------------- files, through the editor or on disk
async def read_current(workspace: Workspace, session_id: str, path: Path) -> str | object | None:
    """The file's text now (None: no file; UNREADABLE: not text, or too large)."""
    files = workspace.agent.files
    if files is not None and files.covers(path):
        try:
            return await files.read_text(session_id, path)
        except Exception:  # noqa: BLE001 - a covered file the editor cannot read: as the disk has it
            pass
    return await asyncio.to_thread(read_state, path)


async def write_current(workspace: Workspace, session_id: str, path: Path, text: str | None,
                        based_on: str | None) -> None:
    """Put `text` in the file (None: delete it), through the editor when it has the file open."""
    files = workspace.agent.files
    if text is None:
        await asyncio.to_thread(_remove, path)
    elif files is not None and files.covers(path):
        await files.write_text(session_id, path, text, based_on)
    else:
        await asyncio.to_thread(write_locked, path, text)


def _covered(workspace: Workspace, path: Path) -> bool:
    files = workspace.agent.files
    return files is not None and files.covers(path)


async def read_all(workspace: Workspace, session_id: str, paths: list[Path]) -> dict[Path, str | object | None]:
    """`read_current` of many files: those on disk in one worker-thread call (a rewind of 200 files)."""
    on_disk = [path for path in paths if not _covered(workspace, path)]
    found = await asyncio.to_thread(lambda: {path: read_state(path) for path in on_disk})
    for path in paths:
        if path not in found:
            found[path] = await read_current(workspace, session_id, path)
    return found


async def write_all(workspace: Workspace, session_id: str,
                    writes: list[tuple[Path, str | None, str | None]]) -> dict[Path, str]:
    """`write_current` of many (path, text, based_on), those on disk in one worker-thread call.
    Returns why each file that could not be written was not (the others are written)."""
    on_disk = [(path, text) for path, text, _based_on in writes if text is None or not _covered(workspace, path)]

    def write_one(path: Path, text: str | None) -> tuple[Path, str | None]:
        try:
            _remove(path) if text is None else write_locked(path, text)
        except (OSError, ToolInputError) as exc:
            return path, f"could not be written: {exc}"
        return path, None

    def write_disk() -> dict[Path, str]:
        # In parallel: closing a file truncated and rewritten waits for its blocks on ext4 (auto_da_alloc),
        # 3 ms a file on a busy disk; 8 threads wait together (200 files: 600 -> 80 ms).
        with ThreadPoolExecutor(WRITERS) as pool:
            outcomes = list(pool.map(lambda item: write_one(*item), on_disk))
        return {path: error for path, error in outcomes if error is not None}

    failed = await asyncio.to_thread(write_disk) if on_disk else {}
    for path, text, based_on in writes:
        if text is not None and _covered(workspace, path):
            try:
                await write_current(workspace, session_id, path, text, based_on)
            except (EditorConflict, ToolInputError) as exc:
                failed[path] = f"the editor did not take the change: {exc}"
    return failed


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------------- agent/changes
async def changes(workspace: Workspace, session: Session, run_id: str | None,
                  since_message_id: str | None) -> shapes.ChangesResult:
    store = workspace.store
    from_seq = None
    if since_message_id is not None:
        from_seq = (await _user_message(workspace, session, since_message_id, "sinceMessageId"))[0]
    rows = await store.file_history(session.id)
    reviews = await store.hunk_reviews(session.id)
    found = ranged_changes(rows, run_id, from_seq)
    return {"files": [change_to_wire(workspace.root, change, reviews) for change in found]}


async def _user_message(workspace: Workspace, session: Session, message_id: str, field: str) -> tuple[int, str]:
    position = await workspace.store.message_position(session.id, message_id)
    if position is None or position[1] != "user" or position[2] is not None:
        raise InvalidParams(f"{message_id!r} is not a user message of session {session.id!r} (hidden messages "
                            f"do not count) @ params.{field}")
    return position[0], position[1]


# ---------------------------------------------------------------------- agent/review
async def review(workspace: Workspace, session: Session, path_param: str,
                 decisions: Sequence[tuple[str, str]]) -> shapes.ReviewResult:
    path = Path(path_param) if Path(path_param).is_absolute() else workspace.root / path_param
    key, rel = str(path), relative(workspace.root, str(path))
    store = workspace.store
    change = next((c for c in ranged_changes(await store.file_history(session.id)) if c.path == key), None)
    if change is None:
        raise HunkNotApplicable(f"{rel} has no change of the agent in this session to review.")
    by_id = {h.id: h for h in _hunks(rel, change.before, change.after)}
    reviews = await store.hunk_reviews(session.id)
    for hunk_id, _decision in decisions:
        if hunk_id not in by_id:
            raise HunkNotApplicable(f"hunk {hunk_id} is not a hunk of {rel} (agent/changes lists them); "
                                    "nothing was changed.")
        if reviews.get((key, hunk_id)) == "reject":
            raise HunkNotApplicable(f"hunk {hunk_id} of {rel} was rejected already; nothing was changed.")
    rejected = [by_id[h] for h, d in decisions if d == "reject"]
    if rejected:
        await _take_back(workspace, session, path, rel, change, rejected)
    await store.save_hunk_reviews(session.id, key, decisions)
    body = {"type": "change_reviewed", "workspace": workspace.agent.workspace_uri, "sessionId": session.id,
            "path": rel, "hunks": [{"id": h, "decision": d} for h, d in decisions]}
    loop = asyncio.get_running_loop()
    loop.call_soon(loop.call_soon, workspace.agent.send, body)  # after the answer, which waits for this to end
    return {"path": rel, "accepted": [h for h, d in decisions if d == "accept"],
            "rejected": [h.id for h in rejected]}


async def _take_back(workspace: Workspace, session: Session, path: Path, rel: str, change: PathChange,
                     rejected: list[hunk_text.Hunk]) -> None:
    current = await read_current(workspace, session.id, path)
    ids = ", ".join(h.id for h in rejected)
    if current is UNREADABLE or (current is None and any(h.new for h in rejected)):
        raise HunkNotApplicable(f"hunk {ids} of {rel} no longer applies: the file is gone or not text now; "
                                "nothing was changed.")
    text = current if isinstance(current, str) else ""
    try:
        reverted = hunk_text.reject(text, rejected)
    except hunk_text.NotApplicable as exc:
        raise HunkNotApplicable(f"hunk {exc} of {rel} no longer applies: its lines were changed since; "
                                "nothing was changed.") from exc
    new = None if change.before is None and reverted == "" else reverted
    try:
        await write_current(workspace, session.id, path, new, text if current is not None else None)
    except (EditorConflict, ToolInputError) as exc:
        raise HunkNotApplicable(f"hunk {ids} of {rel}: the editor did not take the change ({exc}); "
                                "nothing was changed.") from exc
    await workspace.store.add_file_version(session.id, str(path), new)  # a state, not a change of the agent's


# ---------------------------------------------------------------------- agent/rewind and agent/unrewind
def _action(old: object, new: str | None) -> str:
    return "deleted" if new is None else "recreated" if old is None else "restored"


async def rewind(workspace: Workspace, session: Session, message_id: str, force: bool) -> shapes.RewindResult:
    store = workspace.store
    from_seq, _role = await _user_message(workspace, session, message_id, "messageId")
    plan: list[tuple[Path, str | None, str | None]] = []  # (file, its state to restore, the agent's last)
    for key, versions in sorted(_by_path(await store.file_history(session.id)).items()):
        inside = [i for i, row in enumerate(versions) if _owned(row, None, from_seq)]
        if inside:
            target = versions[inside[0] - 1]["content"] if inside[0] > 0 else None
            plan.append((Path(key), target, [row for row in versions if not row["hidden"]][-1]["content"]))
    currents = await read_all(workspace, session.id, [path for path, _target, _latest in plan])
    restored: list[shapes.RestoredFile] = []
    conflicts: list[shapes.Conflict] = []
    written: list[dict[str, Any]] = []
    writes: list[tuple[Path, str | None, str | None]] = []
    for path, target, latest in plan:
        current, rel = currents[path], relative(workspace.root, str(path))
        if current is UNREADABLE:
            conflicts.append({"path": rel, "reason": "it is not a text file now"})
        elif current != latest and not force:
            conflicts.append({"path": rel, "reason": "changed since the agent's last change"})
        elif current != target:
            based_on = current if isinstance(current, str) else None
            writes.append((path, target, based_on))
            restored.append({"path": rel, "action": _action(current, target)})  # type: ignore[typeddict-item]
            written.append({"path": str(path), "previous": based_on, "restored": target})
    failed = await write_all(workspace, session.id, writes)
    restored, written = _without_failed(workspace, failed, restored, conflicts), [
        w for w in written if Path(w["path"]) not in failed]
    rewind_id = uuid.uuid4().hex
    summary = session.summary_message_id
    last_seq = await store.last_seq(session.id)
    if summary is not None:
        position = await store.message_position(session.id, summary)
        if position is not None and position[0] >= from_seq:
            session.summary_message_id = None  # the summary is hidden too: the model gets the history again
    hidden = await store.set_hidden(session.id, rewind_id, from_seq)
    await store.save_rewind({"id": rewind_id, "session_id": session.id, "message_id": message_id,
                             "last_seq": last_seq, "files": written, "summary_message_id": summary})
    _session_changed(workspace, session)
    return {"rewindId": rewind_id, "restored": restored, "conflicts": conflicts, "hiddenMessages": hidden}


async def unrewind(workspace: Workspace, session: Session, force: bool) -> shapes.UnrewindResult:
    store = workspace.store
    last = await store.last_rewind(session.id)
    if last is None:
        raise NothingToUnrewind(f"Session {session.id!r} has no rewind to undo.")
    if await store.last_seq(session.id) > last["last_seq"]:
        raise NothingToUnrewind("A prompt was sent since the last rewind: it can no longer be undone.")
    paths = [Path(file["path"]) for file in last["files"]]
    currents = await read_all(workspace, session.id, paths)
    restored: list[shapes.RestoredFile] = []
    conflicts: list[shapes.Conflict] = []
    writes: list[tuple[Path, str | None, str | None]] = []
    for path, file in zip(paths, last["files"], strict=True):
        current, rel = currents[path], relative(workspace.root, file["path"])
        if current is UNREADABLE or (current != file["restored"] and not force):
            conflicts.append({"path": rel, "reason": "changed since the rewind"})
        elif current != file["previous"]:
            writes.append((path, file["previous"], current if isinstance(current, str) else None))
            restored.append({"path": rel, "action": _action(current, file["previous"])})  # type: ignore[typeddict-item]
    restored = _without_failed(workspace, await write_all(workspace, session.id, writes), restored, conflicts)
    shown = await store.set_hidden(session.id, last["id"], None)
    await store.rewind_undone(last["id"])
    if last["summary_message_id"] is not None:
        session.summary_message_id = last["summary_message_id"]
    _session_changed(workspace, session)
    return {"rewindId": last["id"], "restored": restored, "conflicts": conflicts, "shownMessages": shown}


def _without_failed(workspace: Workspace, failed: dict[Path, str], restored: list[shapes.RestoredFile],
                    conflicts: list[shapes.Conflict]) -> list[shapes.RestoredFile]:
    """The files written; those that could not be are conflicts, saying why."""
    by_rel = {relative(workspace.root, str(path)): reason for path, reason in failed.items()}
    conflicts += [{"path": rel, "reason": reason} for rel, reason in by_rel.items()]
    conflicts.sort(key=lambda c: c["path"])
    return [r for r in restored if r["path"] not in by_rel]


def _session_changed(workspace: Workspace, session: Session) -> None:
    workspace.store.save_session(session)
    workspace.agent.session_updated(session, None)
