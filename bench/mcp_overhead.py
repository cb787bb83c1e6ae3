"""MCP: how long until three stdio servers' tools are ready, and what one tool call costs.

Prints, for `--rounds` rounds (median):
  1. workspace open (`initialized` sent) -> all three servers `connected` (mcp_updated):
     mcp-server-time, mcp-server-git and bench/mcp_echo_server.py;
  2. the `agent/sendMessage` answer while those servers connect (MCP must not delay a prompt);
  3. one `echo` call through crush-ls (the `tool_call` notes `running` -> `completed`, as the
     client reads them) against the same call made directly with the SDK's `mcp.Client`
     over stdio, and the difference: what crush-ls adds to a call (target: under 2 ms).

Usage: python bench/mcp_overhead.py [--rounds 3] [--calls 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accept_latency import Client

HERE = Path(__file__).resolve().parent
ECHO = [sys.executable, str(HERE / "mcp_echo_server.py")]


def servers(repo: Path) -> dict[str, Any]:
    return {
        "time": {"command": sys.executable, "args": ["-m", "mcp_server_time"]},
        "git": {"command": sys.executable, "args": ["-m", "mcp_server_git", "--repository", str(repo)]},
        "echo": {"command": ECHO[0], "args": ECHO[1:]},
    }


class Watch(Client):
    """Records when each MCP server connects and when each tool call changes status."""

    def __init__(self, cmd: list[str]) -> None:
        self.connected: dict[str, float] = {}
        self.statuses: list[tuple[str, str, float]] = []
        super().__init__(cmd)

    def on_notification(self, params: dict[str, Any], received: float) -> None:
        if params["type"] == "mcp_updated":
            for server in params["servers"]:
                if server["state"] == "connected":
                    self.connected.setdefault(server["name"], received)
        elif params["type"] == "tool_call":
            call = params["toolCall"]
            self.statuses.append((call["id"], call["status"], received))


def wait(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.002)


def first_ack(folder: Path, options: dict[str, Any], client: Watch) -> tuple[float, float]:
    """(when the workspace opened, the first prompt's `agent/sendMessage` answer sent right after)."""
    client.initialize(folder, options)  # sends `initialized`: the workspace opens now
    opened = time.perf_counter()
    session = client.request("session/create", {"workspace": folder.as_uri()})[1]["id"]
    ack, _ = client.request("agent/sendMessage", {"workspace": folder.as_uri(), "sessionId": session,
                                                  "prompt": "hello"})
    return opened, ack


def without_mcp() -> float:
    """The same first prompt's answer in a workspace without MCP servers (the baseline)."""
    folder = Path(tempfile.mkdtemp())
    client = Watch([sys.executable, "-m", "crush_ls"])
    try:
        return first_ack(folder, {"model": {"provider": "scripted", "script": {"responses": [
            {"events": [{"text": "ok"}]}]}}}, client)[1]
    finally:
        client.close()


def through_crush_ls(calls: int) -> tuple[float, float, list[float]]:
    """(open -> tools ready, prompt answer while connecting, per-call seconds)."""
    folder = Path(tempfile.mkdtemp())
    subprocess.run(["git", "init", "-q", str(folder / "repo")], check=True)
    script = {"responses": [
        {"when": "call", "step": 0,
         "events": [{"toolCall": {"name": "mcp_echo_echo", "input": {"text": f"n{i}"}}} for i in range(calls)]},
        {"events": [{"text": "ok"}]},
    ]}
    options = {"model": {"provider": "scripted", "script": script}, "permissions": {"mode": "allow"},
               "mcp": servers(folder / "repo")}
    client = Watch([sys.executable, "-m", "crush_ls"])
    try:
        opened, ack = first_ack(folder, options, client)
        session = client.request("session/create", {"workspace": folder.as_uri()})[1]["id"]
        wait(lambda: len(client.connected) == 3, f"3 connected servers (have {client.connected})")
        ready = max(client.connected.values()) - opened
        client.request("agent/sendMessage", {"workspace": folder.as_uri(), "sessionId": session, "prompt": "call"})
        wait(lambda: sum(1 for _id, status, _t in client.statuses if status == "completed") == calls, "the calls")
        running = {i: t for i, s, t in client.statuses if s == "running"}
        completed = {i: t for i, s, t in client.statuses if s == "completed"}
        return ready, ack, [completed[i] - running[i] for i in running]
    finally:
        client.close()


async def direct(calls: int) -> list[float]:
    """The same calls with the SDK alone (a connected mcp.Client, stdio)."""
    import mcp
    from mcp.client.stdio import StdioServerParameters

    times = []
    async with mcp.Client(StdioServerParameters(command=ECHO[0], args=ECHO[1:]), mode="legacy", cache=None) as c:
        await c.list_tools()
        for i in range(calls):
            started = time.perf_counter()
            await c.call_tool("echo", {"text": f"n{i}"})
            times.append(time.perf_counter() - started)
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    ready, acks, bare_acks, ours, sdk = [], [], [], [], []
    for _ in range(args.rounds):  # interleaved, so that load on the machine hits both alike
        r, ack, calls = through_crush_ls(args.calls)
        ready.append(r)
        acks.append(ack)
        ours.extend(calls)
        sdk.extend(asyncio.run(direct(args.calls)))
        bare_acks.append(without_mcp())
    print(f"open -> 3 stdio servers' tools ready: median {statistics.median(ready):.2f} s "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ready)})")
    print(f"first agent/sendMessage answer while they connect: median {ms(statistics.median(acks))}, "
          f"max {ms(max(acks))}; without MCP servers: median {ms(statistics.median(bare_acks))}")
    ours_p50, sdk_p50 = statistics.median(ours), statistics.median(sdk)
    print(f"one MCP tool call, through crush-ls (running -> completed): p50 {ms(ours_p50)}, "
          f"p90 {ms(statistics.quantiles(ours, n=10)[-1])} (n={len(ours)})")
    print(f"the same call, SDK directly:                       p50 {ms(sdk_p50)}, "
          f"p90 {ms(statistics.quantiles(sdk, n=10)[-1])} (n={len(sdk)})")
    print(f"overhead of crush-ls per call: {ms(ours_p50 - sdk_p50)} (target: under 2 ms)")


if __name__ == "__main__":
    main()
