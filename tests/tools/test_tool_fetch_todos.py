"""`fetch` against a local HTTP server (and failing cleanly without one); `todos`."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crush_ls.storage import Store
from crush_ls.tools import builtin_tools
from crush_ls.tools.fetch import MAX_CONTENT

PAGE = (
    "<html><head><title>t</title><script>alert(1)</script></head>"
    "<body><h1>Docs</h1><p>Read <a href='/more'>more</a> <b>now</b>.</p></body></html>"
)
ROUTES = {
    "/page": (200, "text/html; charset=utf-8", PAGE.encode()),
    "/plain": (200, "text/plain", b"just text"),
    "/big": (200, "text/plain", b"x" * (MAX_CONTENT + 5000)),
    "/image": (200, "image/png", b"\x89PNG\r\n"),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/plain")
            self.end_headers()
            return
        status, content_type, body = ROUTES.get(self.path, (404, "text/plain", b"missing"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment must not stand between us and 127.0.0.1.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


async def test_fetch_formats(site, call):
    markdown = await call("fetch", {"url": f"{site}/page"})
    assert not markdown.is_error, markdown.content
    assert markdown.content == "# Docs\n\nRead [more](/more) **now**.\n"
    text = await call("fetch", {"url": f"{site}/page", "format": "text"})
    assert text.content == "Docs\n\nRead more now.\n"
    html = await call("fetch", {"url": f"{site}/page", "format": "html", "timeout": 10})
    assert html.content == PAGE
    assert html.metadata["status"] == 200


async def test_fetch_follows_redirects_and_caps_size(site, call):
    assert (await call("fetch", {"url": f"{site}/redirect"})).content == "just text"
    big = await call("fetch", {"url": f"{site}/big"})
    assert not big.is_error
    assert big.content.startswith("x" * MAX_CONTENT) and big.content.endswith("[Content truncated to 100 KB]")


async def test_fetch_errors_are_results(site, call):
    missing = await call("fetch", {"url": f"{site}/nope"})
    assert missing.is_error and "404" in missing.content
    image = await call("fetch", {"url": f"{site}/image"})
    assert image.is_error and "image/png" in image.content


async def test_fetch_without_a_server_fails_cleanly(call):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = await call("fetch", {"url": f"http://127.0.0.1:{port}/", "timeout": 5})
    assert refused.is_error and refused.content.startswith(f"Failed to fetch http://127.0.0.1:{port}/")
    unknown = await call("fetch", {"url": "http://host.invalid/", "timeout": 5})
    assert unknown.is_error and unknown.content.startswith("Failed to fetch")


async def test_fetch_bad_input(call):
    assert "http" in (await call("fetch", {"url": "file:///etc/passwd"})).content
    assert (await call("fetch", {"url": "ftp://x/"})).is_error
    assert (await call("fetch", {"url": "https://x/", "format": "pdf"})).is_error
    assert (await call("fetch", {"url": "https://x/", "timeout": 121})).is_error
    assert (await call("fetch", {})).is_error


async def test_fetch_always_needs_a_decision(ctx):
    tool = builtin_tools()["fetch"]
    access = tool.access(ctx, tool.parse({"url": "https://example.com/"}))
    assert (access.action, access.path, access.inside, access.asks_inside) == ("fetch", None, True, True)


async def test_todos_replace_the_session_list(call, ctx, store, session, workspace):
    first = await call("todos", {"todos": [
        {"content": "Write tests", "status": "completed"},
        {"content": "Fix bug", "status": "in_progress", "active_form": "Fixing bug"},
    ]})
    assert not first.is_error
    assert first.content.splitlines() == ["Todo list updated (1/2 completed)", "[x] Write tests", "[~] Fix bug"]
    second = await call("todos", {"todos": [{"content": "Ship", "status": "pending"}]})
    assert not second.is_error
    assert store.get_session(session.id).todos == [{"content": "Ship", "status": "pending"}]
    # It reached the database: a fresh Store on the same file sees it.
    await store.flush()
    reopened = Store.open(store.path)
    try:
        assert reopened.get_session(session.id).todos == [{"content": "Ship", "status": "pending"}]
    finally:
        await reopened.close()


async def test_todos_validate_and_need_no_permission(call, ctx):
    assert (await call("todos", {"todos": [{"content": "x", "status": "done"}]})).is_error
    assert (await call("todos", {"todos": [{"status": "pending"}]})).is_error
    assert (await call("todos", {"todos": [{"content": " ", "status": "pending"}]})).is_error
    tool = builtin_tools()["todos"]
    access = tool.access(ctx, tool.parse({"todos": []}))
    assert access.action == "" and access.inside and not access.asks_inside
