"""`bash`: run a shell command in the workspace folder (Crush's `bash`).

The command runs in its own session (so its own process group); a timeout
or the cancellation of the run kills the whole group, and background jobs
the command leaves behind are killed when it ends, so nothing outlives the
call. The group dies with the server too, even a SIGKILLed one (procs.py).
Output (stdout and stderr interleaved) is capped at 30000 characters by
cutting the middle.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from pathlib import Path

import attrs

from ..permissions import Access
from ..settings.secrets import child_environment
from . import tracked
from .base import Tool, ToolContext, ToolResult
from .paths import ToolInputError
from .procs import REAPER, kill_group, spawn
from .readonly import GIT_REDIRECTS, NOT_READ_ONLY, git_guard, verdict
from .schema import arg

DEFAULT_TIMEOUT_MS = 60_000
MAX_TIMEOUT_MS = 600_000
MAX_OUTPUT = 30_000
# Bytes kept from each end of the output while reading (the rest is only counted).
KEEP_BYTES = 64 * 1024
# After the shell exits or is killed, how long leftover pipe holders may take to close.
DRAIN_S = 2.0
SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"

# Crush's banned commands: network clients, privilege changes, package managers,
# system and network configuration. A call using one anywhere is refused.
BANNED_COMMANDS = frozenset("""
alias aria2c axel chrome curl curlie firefox http-prompt httpie links lynx nc safari scp ssh
telnet w3m wget xh doas su sudo apk apt apt-cache apt-get dnf dpkg emerge home-manager makepkg
opkg pacman paru pkg pkg_add pkg_delete portage rpm yay yum zypper at batch chkconfig crontab
fdisk mkfs mount parted service systemctl umount firewall-cmd ifconfig ip iptables netstat pfctl
route ufw
""".split())

@attrs.define
class BashInput:
    command: str = arg("The command to run")
    description: str | None = arg("What the command does, in a few words", default=None)
    timeout: int | None = arg(f"Timeout in milliseconds (max {MAX_TIMEOUT_MS})", default=None)


# Words after which the next word is a command again.
COMMAND_PREFIXES = frozenset(
    "exec command nohup time env builtin nice xargs timeout if then do else elif while until ! {".split()
)


def _command_names(command: str) -> list[str]:
    """The words in command position (after operators, env assignments), as base names."""
    lexer = shlex.shlex(command.replace("`", " ; ").replace("$(", " ; "), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        tokens = command.split()
    names, expect_command = [], True
    for token in tokens:
        if token and all(c in "();<>|&" for c in token):
            expect_command = True
            continue
        if expect_command:
            if "=" in token and not token.startswith("="):
                continue  # VAR=value before the command
            names.append(os.path.basename(token))
            expect_command = token in COMMAND_PREFIXES
    return names


def banned_command(command: str) -> str | None:
    return next((n for n in _command_names(command) if n in BANNED_COMMANDS), None)


class OutputBuffer:
    """Keeps the head and the tail of a possibly endless output, and counts its lines."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.newlines = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.newlines += chunk.count(b"\n")
        room = KEEP_BYTES - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            del self.tail[: max(0, len(self.tail) - KEEP_BYTES)]

    def text(self) -> str:
        """The output, or its first and last MAX_OUTPUT/2 characters around a note of what was cut."""
        if self.total == len(self.head) + len(self.tail):
            whole = (self.head + self.tail).decode("utf-8", errors="replace")
            if len(whole) <= MAX_OUTPUT:
                return whole
            head, tail = whole, whole
        else:
            head = self.head.decode("utf-8", errors="replace")
            tail = self.tail.decode("utf-8", errors="replace")
        half = MAX_OUTPUT // 2
        head, tail = head[:half], tail[-half:]
        cut_lines = self.newlines - head.count("\n") - tail.count("\n")
        return f"{head}\n\n... [{cut_lines} lines truncated] ...\n\n{tail}"


async def _pump(stream: asyncio.StreamReader, out: OutputBuffer) -> None:
    while chunk := await stream.read(65536):
        out.add(chunk)


async def _finish(proc: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    """Kill what is left of the group, reap the shell and stop reading."""
    kill_group(proc.pid)
    await proc.wait()
    try:
        await asyncio.wait_for(asyncio.shield(reader), DRAIN_S)
    except TimeoutError:
        # A process that left the group (setsid) still holds the pipe: stop reading.
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


@attrs.define
class Outcome:
    output: str
    exit_code: int | None
    timed_out: bool
    elapsed_ms: int


async def _output_pipe() -> tuple[int, asyncio.StreamReader, asyncio.BaseTransport]:
    """A pipe for the command's stdout and stderr, read through the event loop.

    Not `stdout=PIPE`: on Python 3.11 `Process.wait()` also waits for the
    pipes to close, so a background job holding them would keep us waiting
    after the shell has exited.
    """
    read_fd, write_fd = os.pipe()
    stream = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(read_fd, "rb", buffering=0)
    )
    return write_fd, stream, transport


async def run_command(command: str, cwd: Path, timeout_ms: int) -> Outcome:
    """Run `command` with a timeout; cancelling this coroutine kills the process group."""
    started = time.monotonic()
    env = _environment()
    if guard := git_guard(command, cwd):
        command, git_env = guard
        env = {k: v for k, v in env.items() if k not in GIT_REDIRECTS} | git_env
    write_fd, stream, transport = await _output_pipe()
    try:
        # Its own group, which dies with the server however the server dies (procs.py).
        proc = await spawn(
            SHELL, "-c", command, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd, stderr=asyncio.subprocess.STDOUT, env=env,
        )
    except BaseException:
        transport.close()
        raise
    finally:
        os.close(write_fd)  # the command has its copy; EOF comes when the last holder exits
    out = OutputBuffer()
    reader = asyncio.create_task(_pump(stream, out))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), timeout_ms / 1000)
        except TimeoutError:
            timed_out = True
        except BaseException:
            # Cancelled (or anything else): the group dies before the error goes on.
            await asyncio.shield(_finish(proc, reader))
            raise
        await _finish(proc, reader)
    finally:
        transport.close()
        REAPER.forget(proc.pid)
    elapsed = int((time.monotonic() - started) * 1000)
    return Outcome(out.text(), None if timed_out else proc.returncode, timed_out, elapsed)


def _environment() -> dict[str, str]:
    # No key variable: a command's output goes to the model, the client and the database.
    env = child_environment()
    # No pagers or prompts waiting for a terminal that is not there.
    env.update({"PAGER": "cat", "GIT_PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "TERM": "dumb"})
    return env


def describe_outcome(outcome: Outcome, timeout_ms: int) -> str:
    text = outcome.output.rstrip("\n")
    if outcome.timed_out:
        note = f"Command timed out after {timeout_ms} ms and was killed"
    elif outcome.exit_code:
        note = f"Exit code {outcome.exit_code}" if outcome.exit_code > 0 else f"Killed by signal {-outcome.exit_code}"
    else:
        note = ""
    if note:
        text = f"{text}\n\n{note}" if text else note
    return text or "no output"


class BashTool(Tool):
    name = "bash"
    action = "execute"
    asks_inside = True
    input_type = BashInput
    description = (
        "Run a shell command (bash) in the workspace folder and return its output (stdout and stderr, "
        f"at most {MAX_OUTPUT} characters, the middle cut). `timeout` in milliseconds (default "
        f"{DEFAULT_TIMEOUT_MS}, max {MAX_TIMEOUT_MS}). There is no terminal and no input. Use view, "
        "grep, glob and ls rather than cat, grep and find. Banned commands: "
        + ", ".join(sorted(BANNED_COMMANDS)) + "."
    )

    def access(self, ctx: ToolContext, args: BashInput) -> Access:
        reason = verdict(args.command, ctx.root)
        description = f"Execute command: {args.command}"
        if reason and reason != NOT_READ_ONLY:
            description += f" ({reason})"  # a read-only command that reaches out: say where
        return Access(
            action=self.action, path=str(ctx.root), inside=True, asks_inside=reason is not None,
            description=description,
        )

    async def run(self, ctx: ToolContext, args: BashInput) -> ToolResult:
        timeout_ms = self._timeout(args)
        if not args.command.strip():
            raise ToolInputError("command must not be empty")
        if "\x00" in args.command:
            raise ToolInputError("command contains a NUL byte")
        if banned := banned_command(args.command):
            raise ToolInputError(
                f"command '{banned}' is not allowed (banned: network clients, sudo, package managers)"
            )
        known = await tracked.snapshot(ctx)
        outcome = await run_command(args.command, ctx.root, timeout_ms)
        await tracked.keep_command_changes(ctx, known)
        metadata = {
            "exitCode": outcome.exit_code, "timedOut": outcome.timed_out,
            "elapsedMs": outcome.elapsed_ms, "description": args.description or "",
        }
        return ToolResult(describe_outcome(outcome, timeout_ms), is_error=outcome.timed_out, metadata=metadata)

    @staticmethod
    def _timeout(args: BashInput) -> int:
        if args.timeout is None:
            return DEFAULT_TIMEOUT_MS
        if not 0 < args.timeout <= MAX_TIMEOUT_MS:
            raise ToolInputError(f"timeout must be between 1 and {MAX_TIMEOUT_MS} milliseconds")
        return args.timeout
