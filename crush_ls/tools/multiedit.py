"""`multiedit`: several `edit`s of one file, in order, all or nothing (Crush's `multiedit`)."""

from __future__ import annotations

import attrs

from .base import Tool, ToolContext, ToolResult
from .edit import NEW_STRING, OLD_STRING, REPLACE_ALL, create_content
from .editing import TextFile, apply_edit, change_file, change_result, ensure_file_path
from .paths import ToolInputError, relative_display
from .schema import FILE_PATH, arg


@attrs.define
class OneEdit:
    old_string: str = arg(OLD_STRING)
    new_string: str = arg(NEW_STRING)
    replace_all: bool = arg(REPLACE_ALL, default=False)


@attrs.define
class MultiEditInput:
    file_path: str = arg(FILE_PATH)
    edits: list[OneEdit] = arg(minItems=1)


class MultiEditTool(Tool):
    name = "multiedit"
    action = "write"
    asks_inside = True
    input_type = MultiEditInput
    description = (
        "Make several edits to one file at once: each edit works like `edit` on the result of the "
        "previous ones. If any edit fails, none is applied. View the file first; a first edit with an "
        "empty `old_string` creates a new file."
    )

    def target(self, args: MultiEditInput) -> str | None:
        return args.file_path

    def describe(self, ctx: ToolContext, args: MultiEditInput) -> str:
        return f"Edit file {args.file_path} ({len(args.edits)} edits)"

    async def run(self, ctx: ToolContext, args: MultiEditInput) -> ToolResult:
        ensure_file_path(args.file_path)
        if not args.edits:
            raise ToolInputError("edits must hold at least one edit")
        path = self.checked_path(ctx, args)
        display = relative_display(ctx.root, path)
        creates = args.edits[0].old_string == ""

        def modify(current: TextFile) -> str:
            content = current.content
            for number, edit in enumerate(args.edits, start=1):
                label = f"edit {number} of {len(args.edits)}: "
                if number == 1 and creates:
                    content = create_content(display, current, edit.new_string)
                    continue
                if not current.exists and not creates:
                    raise ToolInputError(
                        f"file not found: {display} (a first edit with an empty old_string creates it)"
                    )
                if edit.old_string == "":
                    raise ToolInputError(f"{label}old_string must not be empty")
                content = apply_edit(content, edit.old_string, edit.new_string, edit.replace_all, label)
            return content

        change = await change_file(ctx, path, modify, must_have_read=not creates)
        summary = f"Applied {len(args.edits)} edits to" if change.old.exists else "Created"
        return change_result(ctx, path, change, summary)
