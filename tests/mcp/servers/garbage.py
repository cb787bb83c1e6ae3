"""A stdio "server" that prints what is not JSON-RPC on stdout and never answers."""

import sys
import time

print("Welcome to the garbage server! v1.0", flush=True)
for line in sys.stdin:
    print("no JSON here, just noise", flush=True)
time.sleep(3600)
