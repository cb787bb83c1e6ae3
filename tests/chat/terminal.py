"""A pseudo-terminal driver for the chat client (stdlib only: pty, select, termios).

The child gets the pty as its controlling terminal, so writing "\\x03" makes
the line discipline send SIGINT to the foreground process group, as a real
Ctrl-C does. `expect` waits on output (select), never on a fixed sleep.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[=>()][0-9A-Za-z]?|\r")


def plain(text: str) -> str:
    """What a person reads: escape sequences and carriage returns removed."""
    return ANSI.sub("", text)


class Terminal:
    def __init__(self, argv: list[str], *, cwd: str, env: dict[str, str], rows: int = 50, cols: int = 120,
                 stdout_path: str | None = None) -> None:
        """`stdout_path`: send stdout to that file instead (stdin and stderr stay the terminal)."""
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

        def become_terminal_owner() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.rows, self.cols = rows, cols
        stdout = open(stdout_path, "wb") if stdout_path else slave  # noqa: SIM115 - closed below
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=slave, stdout=stdout, stderr=slave,
            preexec_fn=become_terminal_owner, close_fds=True,
        )
        os.close(slave)
        if stdout_path:
            stdout.close()
        self.master = master
        self.output = ""  # everything read so far, raw
        self._seen = 0  # `expect` searches after the previous match

    def screen(self, with_scrollback: bool = False) -> list[str]:
        """The lines a person sees (and could scroll back to): the output played on a
        terminal emulator (pyte)."""
        import pyte

        screen = pyte.HistoryScreen(self.cols, self.rows, history=10_000)
        pyte.Stream(screen).feed(self.output)
        scrolled = [
            "".join(line[x].data for x in range(self.cols)).rstrip() for line in screen.history.top
        ] if with_scrollback else []
        return scrolled + [line.rstrip() for line in screen.display]

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def ctrl_c(self) -> None:
        self.send("\x03")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not chunk:
            return False
        self.output += chunk.decode("utf-8", "replace")
        return True

    def expect(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        """Wait until `pattern` (a regex) appears in the plain output after the last match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            text = plain(self.output)
            match = regex.search(text, self._seen)
            if match:
                self._seen = match.end()
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (not self._read(remaining) and self.proc.poll() is not None):
                raise AssertionError(f"{pattern!r} not seen; output was:\n{text[-3000:]}")

    def wait(self, timeout: float = 20) -> int:
        """The exit code, reading (and keeping) the rest of the output meanwhile."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.05)
        while self._read(0):
            pass
        return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)
