"""A stdio "server" that exits at once with a message on stderr."""

import sys

print("missing API token: set EXAMPLE_TOKEN", file=sys.stderr, flush=True)
sys.exit(2)
