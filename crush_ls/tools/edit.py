"""`edit`: replace one string of a file (Crush's `edit`).

`old_string` must occur once unless `replace_all`; an empty `old_string`
creates a new file holding `new_string`. The file must have been viewed in
this session and not changed on disk since.
"""

from __future__ import annotations

import attrs

from .base import Tool, ToolContext, ToolResult
from .editing import TextFile, apply_edit, change_file, change_result, ensure_file_path, normalize_newlines
from .paths import ToolInputError, relative_display
from .schema import FILE_PATH, arg

# Shared with multiedit, whose edits take the same three fields.
OLD_STRING = "The exact text to replace (empty: create a new file)"
NEW_STRING = "The text to put in its place"
REPLACE_ALL = "Replace every occurrence (default false)"


@attrs.define
class EditInput:
    file_path: str = arg(FILE_PATH)
    old_string: str = arg(OLD_STRING)
    new_string: str = arg(NEW_STRING)
    replace_all: bool = arg(REPLACE_ALL, default=False)


def create_content(display: str, current: TextFile, content: str) -> str:
    """`old_string == ""`: the file must not exist yet."""
    if current.exists:
        raise ToolInputError(
            f"{display} already exists; to change it give old_string, or use write to replace it"
        )
    return normalize_newlines(content)


class EditTool(Tool):
    name = "edit"
    action = "write"
    asks_inside = True
    input_type = EditInput
    description = (
        "Replace `old_string` with `new_string` in a file. View the file first. `old_string` must "
        "match exactly (whitespace included) and be unique unless `replace_all` is true. An empty "
        "`old_string` creates a new file whose content is `new_string`."
    )

    def target(self, args: EditInput) -> str | None:
        return args.file_path

    def describe(self, ctx: ToolContext, args: EditInput) -> str:
        verb = "Create file" if args.old_string == "" else "Edit file"
        return f"{verb} {args.file_path}"

    async def run(self, ctx: ToolContext, args: EditInput) -> ToolResult:
        ensure_file_path(args.file_path)
        path = self.checked_path(ctx, args)
        display = relative_display(ctx.root, path)

        def modify(current: TextFile) -> str:
            if args.old_string == "":
                return create_content(display, current, args.new_string)
            if not current.exists:
                raise ToolInputError(f"file not found: {display} (an empty old_string creates a file)")
            return apply_edit(current.content, args.old_string, args.new_string, args.replace_all)

        change = await change_file(ctx, path, modify, must_have_read=args.old_string != "")
        return change_result(ctx, path, change, "Edited" if change.old.exists else "Created")
