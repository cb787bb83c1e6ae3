"""The `diagnosing` fixture: a started `DiagnosingEditor` (editor.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.context.editor import DiagnosingEditor, diagnosing_capabilities, diagnosing_factory
from tests.documents.editor import ready


@pytest.fixture
def diagnosing(start: Any) -> Any:
    """`await diagnosing(init_options, declare=True)`: a started DiagnosingEditor (like VS Code, saving)."""

    async def _start(init_options: dict[str, Any], *, declare: bool = True, **kw: Any) -> DiagnosingEditor:
        client = ready(await start(init_options, capabilities=diagnosing_capabilities(declare),
                                   factory=diagnosing_factory, **kw))
        assert isinstance(client, DiagnosingEditor)
        return client

    return _start
