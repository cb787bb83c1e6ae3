"""A seeded generator of hostile JSON-RPC messages and framing faults (issue 15, "The suite and the report").

`Hostile(seed, sessions).messages(n)` yields `Shot`s: the exact bytes of one message body (or of a
framing fault, already framed) and the id whose one answer is owed, if any. The same seed gives the
same bytes. What the generator never sends, because it is no fault: `shutdown`/`exit` (they end the
server on purpose), `initialize` with a valid shape, folder changes and ACP `cwd`s naming real folders
outside the workspace (a client may open any folder it names), `scriptPath`/`baseUrl` (a client may
name a file or a host of its choosing).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from typing import Any

import attrs

SEED = int(os.environ.get("CRUSH_LS_RELIABILITY_SEED", "15"))


def scale(default: int) -> int:
    """CI's count, multiplied by CRUSH_LS_RELIABILITY_SCALE for a longer local run."""
    return int(default * float(os.environ.get("CRUSH_LS_RELIABILITY_SCALE", "1")))


@attrs.frozen
class Shot:
    data: bytes
    owed: Any = None  # the id of the one answer this message must get, or None
    framed: bool = False  # data is already a (faulty) frame: send as is
    kind: str = ""


LSP_METHODS: dict[str, dict[str, Any]] = {
    "agent/sendMessage": {"sessionId": "{session}", "prompt": "hello"},
    "agent/cancel": {"sessionId": "{session}"},
    "agent/status": {},
    "agent/queuedPrompts": {"sessionId": "{session}"},
    "agent/clearQueue": {"sessionId": "{session}"},
    "agent/summarize": {"sessionId": "{session}"},
    "agent/models": {},
    "agent/setModel": {"model": {"provider": "echo"}},
    "agent/mcpServers": {},
    "session/create": {"title": "t"},
    "session/list": {},
    "session/get": {"sessionId": "{session}"},
    "session/messages": {"sessionId": "{session}"},
    "session/rename": {"sessionId": "{session}", "title": "r"},
    "session/delete": {"sessionId": "{session}"},
    "$/cancelRequest": {"id": 1},
    "agent/fly": {},
    "": {},
}

ACP_METHODS: dict[str, dict[str, Any]] = {
    "initialize": {"protocolVersion": 1, "clientCapabilities": {}},
    "authenticate": {"methodId": "x"},
    "session/new": {"cwd": "{cwd}", "mcpServers": []},
    "session/list": {},
    "session/load": {"cwd": "{cwd}", "sessionId": "{session}", "mcpServers": []},
    "session/prompt": {"sessionId": "{session}", "prompt": [{"type": "text", "text": "hello"}]},
    "session/set_mode": {"sessionId": "{session}", "modeId": "ask"},
    "session/close": {"sessionId": "{session}"},
    "session/fly": {},
}
ACP_NOTIFICATIONS = ["session/cancel", "$/cancel_request", "session/update", "fly"]

# Keys a mutation may add: fields of the protocol, none naming a file or a host.
KEYS = ["sessionId", "prompt", "title", "runId", "mode", "attachments", "workspace", "model", "provider",
        "id", "text", "type", "path", "content", "cwd", "messageId", "limit", "cursor", "", "\u0000", "\ud800"]
STRINGS = ["", " ", "x" * 10_000, "\u0000", "\ud800", "\udfff tail", "\U0001f600", "null", "../../etc/passwd",
           "file:///etc", "{session}", "\n\r\t", "é" * 100, "-1", "1e999"]
NUMBERS = [0, -1, 1, 2**31, 2**63, 10**30, -(10**30), 1.5, -0.0, 1e308]


class Hostile:
    def __init__(self, seed: int, sessions: list[str], *, acp: bool = False, cwd: str = "") -> None:
        self.rng = random.Random(seed)
        self.sessions = sessions
        self.acp = acp
        self.cwd = cwd
        self.methods = ACP_METHODS if acp else LSP_METHODS
        self.sent_ids: list[Any] = []
        self._n = 0

    # ------------------------------------------------------------------ values
    def value(self, depth: int = 0) -> Any:
        r = self.rng.random()
        if depth > 2 or r < 0.35:
            return self.rng.choice([None, True, False, *NUMBERS, *STRINGS])
        if r < 0.6:
            return self.rng.choice(STRINGS) + "".join(chr(self.rng.randrange(1, 0x3000)) for _ in range(5))
        if r < 0.8:
            return [self.value(depth + 1) for _ in range(self.rng.randrange(4))]
        return {self.rng.choice(KEYS): self.value(depth + 1) for _ in range(self.rng.randrange(4))}

    def fill(self, params: Any) -> Any:
        """Placeholders replaced: a real session of the workspace (or none), the workspace folder."""
        text = json.dumps(params)
        text = text.replace("{session}", self.rng.choice([*self.sessions, "ghost", ""]) if self.sessions else "ghost")
        text = text.replace("{cwd}", self.rng.choice([self.cwd, self.cwd, "relative", self.cwd + "/missing", ""]))
        return json.loads(text)

    def mutate(self, params: dict[str, Any]) -> Any:
        params = dict(params)
        for _ in range(self.rng.randrange(1, 4)):
            r = self.rng.random()
            if r < 0.3 and params:
                params[self.rng.choice(list(params))] = self.value()
            elif r < 0.5 and params:
                params.pop(self.rng.choice(list(params)))
            elif r < 0.8:
                params[self.rng.choice(KEYS)] = self.value()
            else:
                return self.value()
        return params

    def next_id(self) -> Any:
        self._n += 1
        msg_id: Any = f"h{self._n}" if self._n % 2 else 1_000_000 + self._n
        self.sent_ids.append(msg_id)
        return msg_id

    # ------------------------------------------------------------------ messages
    def request(self, mutate: bool) -> Shot:
        method = self.rng.choice(list(self.methods))
        params = self.fill(self.methods[method])
        if method in ("$/cancelRequest",) and self.sent_ids:
            params = {"id": self.rng.choice(self.sent_ids[-50:])}
        if mutate:
            params = self.mutate(params)
        msg_id = self.next_id()
        message = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}
        if self.rng.random() < 0.1:
            message.pop("params")
        return Shot(json.dumps(message).encode(), msg_id, kind="mutated" if mutate else "valid")

    def notification(self) -> Shot:
        methods = ACP_NOTIFICATIONS if self.acp else ["$/cancelRequest", "agent/sendMessage", "initialized",
                                                      "$/setTrace", "agent/garbage", "textDocument/didOpen"]
        method = self.rng.choice(methods)
        params: Any = self.value()
        if method in ("$/cancelRequest", "$/cancel_request") and self.sent_ids and self.rng.random() < 0.7:
            params = {"id" if not self.acp else "requestId": self.rng.choice(self.sent_ids[-50:])}
        if method == "session/cancel" and self.sessions:
            params = {"sessionId": self.rng.choice(self.sessions)}
        return Shot(json.dumps({"jsonrpc": "2.0", "method": method, "params": params}).encode(), kind="notification")

    def envelope(self) -> Shot:
        """A message that is not valid JSON-RPC (answered with the id it carries, if a valid one)."""
        method = self.rng.choice(list(self.methods))
        choice = self.rng.randrange(12)
        if choice == 0:
            msg_id = self.next_id()
            return Shot(json.dumps({"id": msg_id, "method": method, "params": {}}).encode(), msg_id, kind="envelope")
        if choice == 1:
            msg_id = self.next_id()
            return Shot(json.dumps({"jsonrpc": "1.0", "id": msg_id, "method": method}).encode(), msg_id, kind="envelope")
        if choice == 2:
            msg_id = self.next_id()
            return Shot(json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": self.value()}).encode(), msg_id,
                        kind="envelope")
        if choice == 3:  # an id no answer can carry
            bad = self.rng.choice([{"a": 1}, [1], True, None, 1.5])
            return Shot(json.dumps({"jsonrpc": "2.0", "id": bad, "method": method, "params": {}}).encode(),
                        kind="envelope")
        if choice == 4:  # a response to nothing, or to one of the server's own ids
            msg_id = self.rng.choice(["never-asked", "crush-ls/1", 0, *self.sent_ids[-5:]]) if not self.acp \
                else self.rng.choice(["never-asked", 0, 10_000])
            return Shot(json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": self.value()}).encode(), kind="response")
        if choice == 5:
            return Shot(json.dumps([{"jsonrpc": "2.0", "id": 1, "method": method}]).encode(), kind="envelope")
        if choice == 6:
            return Shot(json.dumps(self.value()).encode(), kind="envelope")
        if choice == 7:  # truncated JSON
            whole = json.dumps({"jsonrpc": "2.0", "id": "cut", "method": method, "params": {"x": "y" * 20}})
            return Shot(whole[: self.rng.randrange(1, len(whole) - 1)].encode(), kind="json")
        if choice == 8:  # invalid UTF-8
            return Shot(bytes(self.rng.randrange(128, 256) for _ in range(self.rng.randrange(1, 40))), kind="json")
        if choice == 9:
            depth = self.rng.choice([100, 5_000, 50_000])
            return Shot(b'{"jsonrpc":"2.0","method":"x","params":' + b"[" * depth + b"]" * depth + b"}", kind="json")
        if choice == 10:
            msg_id = self.next_id()  # NaN is not JSON, but Python's parser takes it: the id is answered
            return Shot(b'{"jsonrpc":"2.0","id":%s,"method":"x","params":{"n":NaN}}' % json.dumps(msg_id).encode(),
                        msg_id, kind="json")
        return Shot(b"{not json", kind="json")

    def fault(self) -> Shot:
        """A framing fault the server must survive (LSP: a bad header; ACP: a bad line)."""
        if self.acp:
            if self.rng.random() < 0.1:  # a line over the limit: refused by its id, the rest of it skipped
                msg_id = self.next_id()
                line = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "session/list",
                                   "params": {"pad": "p" * MAX_FRAME}}).encode()
                return Shot(line + b"\n", msg_id, framed=True, kind="fault")
            data = self.rng.choice([b"\n", b"\r\n", b"   \n", b"\0\0\0\n", b"[1]\n", b"7\n", b'"s"\n',
                                    b"null\n", b"z" * 70_000 + b"\n", b"{\n", b"\xff\xfe\n"])
        elif self.rng.random() < 0.1:  # a whole frame over the limit: refused by its id, its body skipped
            msg_id = self.next_id()
            body = json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "agent/status",
                               "params": {"pad": "p" * MAX_FRAME}}).encode()
            return Shot(b"Content-Length: %d\r\n\r\n" % len(body) + body, msg_id, framed=True, kind="fault")
        else:
            data = self.rng.choice(LSP_FAULTS)
        return Shot(data, framed=True, kind="fault")

    def messages(self, count: int) -> Iterator[Shot]:
        for _ in range(count):
            r = self.rng.random()
            if r < 0.2:
                yield self.request(mutate=False)
            elif r < 0.55:
                yield self.request(mutate=True)
            elif r < 0.7:
                yield self.notification()
            elif r < 0.93:
                yield self.envelope()
            else:
                yield self.fault()


# Header faults after which the next well-framed message is read (issue 15 item 8).
LSP_FAULTS = [
    json.dumps({"jsonrpc": "2.0", "id": "headerless", "method": "agent/status"}).encode(),
    b"Content-Type: application/json\r\n\r\n{}",
    b"Content-Length: -5\r\n\r\n{}",
    b"Content-Length: +2\r\n\r\n{}",
    b"Content-Length: twelve\r\n\r\n{}",
    b"Content-Length: 2\n\n{}",
    b"Content-Length 2\r\n\r\n{}",
    b"\0\0\0\0",
    b"Content-Length: " + b"7" * 4300 + b"\r\n\r\n{}",
    b"z" * 70_000,
    b"\r\n\r\n",
]
MAX_FRAME = 1 << 20  # the servers under test run with CRUSH_LS_MAX_FRAME at this
