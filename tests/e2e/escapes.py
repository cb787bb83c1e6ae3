"""Ways out of the workspace that the safety tests try: commands that read outside it, a git history
to read through, and a symlink swapped between inside and outside while a call is decided."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})


def commit_all(folder: Path) -> None:
    git(folder, "init", "-q", ".")
    git(folder, "add", "-A")
    git(folder, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")


OUTSIDE_READS = [
    "git show HEAD:../outside/secret.txt", "git log -p", "git show HEAD", "git diff HEAD", "git log --stat",
    "ls -RL", "ls -lL door", "du -L", "wc --files0-from=list", "cat HEAD:../outside/secret.txt",
]


SWAP = """
import os, sys
link, inside, outside, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
spare = link + ".new"
for n in range(limit):
    os.symlink(outside if n % 2 else inside, spare)
    os.replace(spare, link)
"""


class Swapper:
    """Swaps `link` between a file inside and one outside as fast as it can, in a process of its own
    (bounded: it stops by itself after `limit` swaps, and is killed when the test is done)."""

    def __init__(self, link: Path, inside: Path, outside: Path, limit: int = 20_000_000) -> None:
        self.args = [sys.executable, "-c", SWAP, str(link), str(inside), str(outside), str(limit)]
        self.link, self.inside = link, inside

    def __enter__(self) -> Swapper:
        os.symlink(self.inside, self.link)
        self.proc = subprocess.Popen(self.args)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()
