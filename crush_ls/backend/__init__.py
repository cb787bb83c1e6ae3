"""Workspaces, their lifetime and their runs: the transport-free backend.

The server module translates requests into calls here. Every run belongs to
its workspace: only `agent/cancel`, `agent/clearQueue`, `session/delete`,
closing the workspace, `shutdown` or end of input end it.

`client` is what the backend needs of the transport, `workspace` one open
folder, `registry` the workspaces' lifetime, `operations` the requests.
"""

from .client import Client, WorkspaceAsker
from .operations import Backend
from .registry import CLOSE_TIMEOUT
from .workspace import Workspace, uri_to_path

__all__ = ["CLOSE_TIMEOUT", "Backend", "Client", "Workspace", "WorkspaceAsker", "uri_to_path"]
