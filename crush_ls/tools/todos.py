"""`todos`: replace the session's todo list (Crush's `todos`).

It touches no file and needs no permission. The list is kept with the
session (`Session.todos`, saved to the database).
"""

from __future__ import annotations

from typing import Literal

import attrs

from ..permissions import Access
from .base import Tool, ToolContext, ToolResult
from .paths import ToolInputError
from .schema import arg

STATUS_MARKS = {"pending": "[ ]", "in_progress": "[~]", "completed": "[x]"}


@attrs.define
class Todo:
    content: str = arg("What to do")
    status: Literal["pending", "in_progress", "completed"] = arg()
    active_form: str | None = arg("Present-continuous form", default=None)


@attrs.define
class TodosInput:
    todos: list[Todo] = arg()


def as_stored(todo: Todo) -> dict[str, str]:
    stored = {"content": todo.content, "status": todo.status}
    if todo.active_form:
        stored["active_form"] = todo.active_form
    return stored


class TodosTool(Tool):
    name = "todos"
    action = ""
    input_type = TodosInput
    description = (
        "Keep a todo list for the current task: send the whole list each time (it replaces the "
        "previous one). Status is pending, in_progress or completed; keep one item in_progress; "
        "`active_form` is the present-continuous form shown while it runs (\"Running tests\")."
    )

    def access(self, ctx: ToolContext, args: TodosInput) -> Access:
        return Access(action="", path=None, inside=True, asks_inside=False, description="Update the todo list")

    async def run(self, ctx: ToolContext, args: TodosInput) -> ToolResult:
        for number, todo in enumerate(args.todos, start=1):
            if not todo.content.strip():
                raise ToolInputError(f"todo {number}: content must not be empty")
        session = ctx.store.get_session(ctx.session_id)
        if session is None:
            raise ToolInputError("the session no longer exists")
        session.todos = [as_stored(t) for t in args.todos]
        ctx.store.save_session(session)
        done = sum(t.status == "completed" for t in args.todos)
        lines = [f"{STATUS_MARKS[t.status]} {t.content}" for t in args.todos]
        body = f"Todo list updated ({done}/{len(args.todos)} completed)"
        return ToolResult("\n".join([body, *lines]), metadata={"todos": session.todos})
