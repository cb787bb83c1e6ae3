"""A stdio "server" that never answers `initialize`, ignores SIGTERM and end of input: only SIGKILL ends it."""

import signal
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("mute server started", file=sys.stderr, flush=True)
while True:
    time.sleep(3600)
