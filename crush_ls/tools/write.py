"""`write`: create or overwrite a file with the given content (Crush's `write`)."""

from __future__ import annotations

import attrs

from .base import Tool, ToolContext, ToolResult
from .editing import TextFile, change_file, change_result, ensure_file_path, normalize_newlines
from .schema import FILE_PATH, arg


@attrs.define
class WriteInput:
    file_path: str = arg(FILE_PATH)
    content: str = arg("The complete new content of the file")


class WriteTool(Tool):
    name = "write"
    action = "write"
    asks_inside = True
    input_type = WriteInput
    description = (
        "Create a file, or replace the whole content of one, creating missing parent directories. "
        "Prefer `edit` to change part of an existing file. If you viewed the file, it must not have "
        "changed on disk since."
    )

    def target(self, args: WriteInput) -> str | None:
        return args.file_path

    def describe(self, ctx: ToolContext, args: WriteInput) -> str:
        return f"Write file {args.file_path}"

    async def run(self, ctx: ToolContext, args: WriteInput) -> ToolResult:
        ensure_file_path(args.file_path)
        path = self.checked_path(ctx, args)

        def replace(current: TextFile) -> str:
            # Keep the file's line ends: content is compared and diffed with "\n".
            return normalize_newlines(args.content) if current.crlf else args.content

        change = await change_file(ctx, path, replace, must_have_read=False)
        return change_result(ctx, path, change, "Updated" if change.old.exists else "Created")
