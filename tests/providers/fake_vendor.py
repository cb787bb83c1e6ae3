"""A scripted vendor HTTP server on 127.0.0.1, in a thread, for tests.

Each request to the server gets the next response of its list:

- `Status(429, {...}, headers={"retry-after": "0"})`: an HTTP error with a JSON body;
- a list of stream items: events (dicts, written in the vendor's SSE format by
  the subclass), `bytes` written as they are, `Hold(event)` to wait for a
  `threading.Event` (default: until the server stops), or `Drop()` to cut the
  connection in the middle of the chunked body.

When the list runs out the server answers 400 naming the request, so a test
that makes one call too many fails loudly instead of hanging.

`requests` holds the JSON bodies received, `request_headers` their headers (names lower-cased).

Session titles: crush-ls asks the model for a title alongside the first
prompt of a session, concurrently with the run. Those requests (no tools, a
system prompt about titles) are answered with `titles` ("Fake title" by
default) without taking a response of the list, and recorded in
`title_requests` instead of `requests`. `titles=None` serves them like any other.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs


@attrs.define
class Status:
    status: int
    body: Any = attrs.Factory(dict)
    headers: dict[str, str] = attrs.Factory(dict)


@attrs.define
class Drop:
    """Close the connection here, without ending the chunked body."""


@attrs.define
class Hold:
    """Stop streaming until `event` is set (None: until the server stops)."""

    event: threading.Event | None = None


Response = Status | list[Any]


class FakeVendorServer:
    """Base of FakeOpenAI and FakeAnthropic: subclasses say how events are written."""

    path_suffix = ""  # the endpoint the SDK posts to, e.g. "/chat/completions"

    def __init__(self, responses: list[Response] | None = None, *, titles: str | None = "Fake title") -> None:
        self.responses: list[Response] = list(responses or [])
        self.titles = titles
        self.title_requests: list[Any] = []
        self.requests: list[Any] = []
        self.request_headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._holds: list[threading.Event] = []  # released when the server stops
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- what subclasses define ---------------------------------------------

    def encode_event(self, event: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def end_of_stream(self) -> bytes:
        return b""

    def system_text(self, body: dict[str, Any]) -> str:
        raise NotImplementedError

    def text_response(self, text: str) -> Response:
        raise NotImplementedError

    def is_title_request(self, body: Any) -> bool:
        return (self.titles is not None and isinstance(body, dict) and not body.get("tools")
                and "title" in self.system_text(body).lower())

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    # --- API for tests --------------------------------------------------------

    @property
    def origin(self) -> str:
        assert self._server is not None, "use the server as a context manager"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(self, *responses: Response) -> None:
        with self._lock:
            self.responses.extend(responses)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        """Block until `count` requests arrived (raises TimeoutError otherwise)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"{len(self.requests)} requests arrived, expected {count}")

    def __enter__(self) -> FakeVendorServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        # serve_forever notices shutdown() only between polls: poll often, close fast.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,),
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stopping.set()
        with self._lock:
            for event in self._holds:
                event.set()
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # --- serving ----------------------------------------------------------------

    def _next_response(self, body: Any, headers: dict[str, str], path: str) -> Response:
        if self.is_title_request(body):
            with self._lock:
                self.title_requests.append(body)
            return self.text_response(self.titles or "")
        with self._lock:
            self.requests.append(body)
            self.request_headers.append(headers)
            self.paths.append(path)
            number = len(self.requests)
            self._lock.notify_all()
            if self.responses:
                return self.responses.pop(0)
        message = f"fake server: no response left for request {number}"
        return Status(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked bodies, so a Drop is visible as one

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body: Any = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode(errors="replace")
                headers = {name.lower(): value for name, value in self.headers.items()}
                response = fake._next_response(body, headers, self.path)
                try:
                    if isinstance(response, Status):
                        self._send_status(response)
                    else:
                        self._send_stream(response)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a cancel, a timeout): fine

            def _send_status(self, response: Status) -> None:
                payload = response.body if isinstance(response.body, str) else json.dumps(response.body)
                data = payload.encode()
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _send_stream(self, items: list[Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for item in items:
                    if isinstance(item, Drop):
                        self._drop()
                        return
                    if isinstance(item, Hold):
                        self._hold(item)
                        continue
                    if fake._stopping.is_set():
                        self._drop()
                        return
                    self._chunk(item if isinstance(item, bytes) else fake.encode_event(item))
                self._chunk(fake.end_of_stream())
                self.wfile.write(b"0\r\n\r\n")  # the last chunk: the body is complete
                self.wfile.flush()

            def _chunk(self, data: bytes) -> None:
                if data:  # an empty chunk would end the body
                    self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

            def _hold(self, item: Hold) -> None:
                if item.event is None:
                    fake._stopping.wait()
                    return
                with fake._lock:
                    fake._holds.append(item.event)
                if fake._stopping.is_set():
                    return
                item.event.wait()

            def _drop(self) -> None:
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        return Handler
