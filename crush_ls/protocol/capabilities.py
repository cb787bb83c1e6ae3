"""What the client declared in `initialize` that the backend uses (PROTOCOL "Documents and edits").

The server reads them off LSP's `ClientCapabilities` once; the backend and
the tools see only these flags, never the transport's types.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class ClientCapabilities:
    apply_edit: bool = False  # workspace.applyEdit
    document_changes: bool = False  # workspace.workspaceEdit.documentChanges: versioned edits
    create_files: bool = False  # workspace.workspaceEdit.resourceOperations includes "create"
    show_document: bool = False  # window.showDocument.support
    save_document: bool = False  # experimental.crush.saveDocument: answers agent/saveDocument
    diagnostics: bool = False  # experimental.crush.diagnostics: answers agent/diagnostics
    position_encoding: str = "utf-16"  # negotiated: what positions of document sync and edits count
