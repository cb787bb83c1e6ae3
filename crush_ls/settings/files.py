"""Reading a file a client or a configuration names, without trusting what it is.

A named "file" may be a FIFO that nobody writes (reading blocks forever),
`/dev/zero` (never ends) or huge. `read_regular_file` opens without blocking,
refuses anything but a regular file, and reads at most `limit` bytes; callers
that may meet a slow filesystem run it off the event loop.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_NAMED_FILE_BYTES = 16 * 1024 * 1024

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


class UnreadableFile(ValueError):
    """A named file that is not a regular file of a sensible size (the message says which)."""


def read_regular_file(path: Path, limit: int = MAX_NAMED_FILE_BYTES) -> bytes:
    """The content of the regular file `path`, at most `limit` bytes; OSError or UnreadableFile otherwise."""
    # O_NONBLOCK: opening a FIFO for reading waits for a writer otherwise.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            kind = next((name for test, name in _KINDS if test(status.st_mode)), "not a regular file")
            raise UnreadableFile(f"it is {kind}, not a regular file")
        if status.st_size > limit:
            raise UnreadableFile(f"it is larger than {limit} bytes")
        content = file.read(limit + 1)  # the size may change after fstat: bound the read itself
    if len(content) > limit:
        raise UnreadableFile(f"it is larger than {limit} bytes")
    return content
