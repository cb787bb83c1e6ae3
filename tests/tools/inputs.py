"""The file tools' inputs with a path put in, for the confinement tests (unit and through the protocol)."""

from __future__ import annotations

from typing import Any

# For each tool, its input with the path put in (and what a call would write).
CALLS: dict[str, Any] = {
    "view": lambda p: {"file_path": p},
    "ls": lambda p: {"path": p},
    "glob": lambda p: {"pattern": "*", "path": p},
    "grep": lambda p: {"pattern": "x", "path": p},
    "write": lambda p: {"file_path": p, "content": "pwned"},
    "edit": lambda p: {"file_path": p, "old_string": "", "new_string": "pwned"},
    "multiedit": lambda p: {"file_path": p, "edits": [{"old_string": "", "new_string": "pwned"}]},
}
