from __future__ import annotations

from typing import Any

import pytest

from tests.documents.editor import Editor, editor_options, ready


@pytest.fixture
def editor(start: Any) -> Any:
    """`await editor(init_options, like="vscode"|"neovim", save=..., apply_edit=...)`: a started `Editor`."""

    async def _editor(init_options: dict[str, Any], like: str = "vscode", *, save: bool = False,
                      apply_edit: bool = True, **kw: Any) -> Editor:
        return ready(await start(init_options, **editor_options(like, save=save, apply_edit=apply_edit), **kw), like)

    return _editor
