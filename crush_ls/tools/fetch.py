"""`fetch`: get a web page as text, Markdown or HTML (Crush's `fetch`).

Every failure (no network, DNS, timeout, HTTP error status, a body that is
not text) is an error result the model reads, never an exception.
"""

from __future__ import annotations

import asyncio
from typing import Literal
from urllib.parse import urlsplit

import attrs

from .. import __version__
from ..permissions import Access
from .base import Tool, ToolContext, ToolResult
from .htmltext import html_to_markdown, html_to_text
from .paths import ToolInputError
from .schema import arg

DEFAULT_TIMEOUT_S = 30
MAX_TIMEOUT_S = 120
MAX_READ_BYTES = 5 * 1024 * 1024  # read at most this much of a body
MAX_CONTENT = 100 * 1024  # and give the model at most this many characters
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml", "application/javascript",
              "application/ld+json", "application/rss", "application/atom", "application/x-yaml")


@attrs.define
class FetchInput:
    url: str = arg("The URL to fetch")
    format: Literal["text", "markdown", "html"] = arg("Format of the result", default="markdown")
    timeout: int | None = arg(f"Timeout in seconds (max {MAX_TIMEOUT_S})", default=None)


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ToolInputError("url must be an http:// or https:// URL")


def _timeout(args: FetchInput) -> int:
    if args.timeout is None:
        return DEFAULT_TIMEOUT_S
    if not 0 < args.timeout <= MAX_TIMEOUT_S:
        raise ToolInputError(f"timeout must be between 1 and {MAX_TIMEOUT_S} seconds")
    return args.timeout


async def download(url: str, timeout_s: int) -> tuple[int, str, bytes, bool]:
    """(status, content type, body, truncated); raises httpx errors."""
    import httpx  # imported here: most sessions never fetch

    headers = {"User-Agent": f"crush-ls/{__version__}", "Accept": "text/html,text/plain,*/*;q=0.8"}
    async with httpx.AsyncClient(follow_redirects=True, timeout=timeout_s, headers=headers) as client:
        async with client.stream("GET", url) as response:
            body = bytearray()
            truncated = False
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_READ_BYTES:
                    del body[MAX_READ_BYTES:]
                    truncated = True
                    break
            return response.status_code, response.headers.get("content-type", ""), bytes(body), truncated


def convert(body: bytes, content_type: str, fmt: str) -> str:
    charset = "utf-8"
    if "charset=" in content_type:
        charset = content_type.split("charset=", 1)[1].split(";")[0].strip().strip('"') or "utf-8"
    try:
        text = body.decode(charset, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    is_html = "html" in content_type or (not content_type and "<html" in text[:1000].lower())
    if not is_html or fmt == "html":
        return text
    return html_to_markdown(text) if fmt == "markdown" else html_to_text(text)


def _is_text(content_type: str) -> bool:
    return not content_type or content_type.lower().startswith(TEXT_TYPES)


class FetchTool(Tool):
    name = "fetch"
    action = "fetch"
    asks_inside = True
    input_type = FetchInput
    description = (
        "Fetch a URL (http or https) and return its content as markdown (default), text or html. "
        f"`timeout` in seconds (max {MAX_TIMEOUT_S}). At most {MAX_CONTENT // 1024} KB of content is returned."
    )

    def access(self, ctx: ToolContext, args: FetchInput) -> Access:
        # No file is touched: nothing to confine; every fetch needs a decision.
        return Access(action=self.action, path=None, inside=True, asks_inside=True, description=f"Fetch {args.url}")

    async def run(self, ctx: ToolContext, args: FetchInput) -> ToolResult:
        check_url(args.url)
        timeout_s = _timeout(args)
        try:
            status, content_type, body, truncated = await asyncio.wait_for(download(args.url, timeout_s), timeout_s)
        except TimeoutError:
            return ToolResult(f"Failed to fetch {args.url}: no complete answer within {timeout_s} s", is_error=True)
        except Exception as exc:  # noqa: BLE001 - any network failure is a result the model reads
            reason = str(exc) or type(exc).__name__
            return ToolResult(f"Failed to fetch {args.url}: {reason}", is_error=True)
        metadata = {"status": status, "contentType": content_type, "bytes": len(body)}
        if status >= 400:
            return ToolResult(f"Request failed with status code {status}", is_error=True, metadata=metadata)
        if not _is_text(content_type):
            return ToolResult(f"Unsupported content type {content_type!r}: not text", is_error=True, metadata=metadata)
        content = convert(body, content_type, args.format)
        if truncated or len(content) > MAX_CONTENT:
            content = content[:MAX_CONTENT] + f"\n\n[Content truncated to {MAX_CONTENT // 1024} KB]"
        return ToolResult(content, metadata=metadata)
