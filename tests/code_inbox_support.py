"""A code relay for tests: a small HTTP server standing in for the e-mail or SMS relay a deployment
names in ``PAYERBOT_CODE_INBOXES``.

``GET {url}/codes/{username}`` answers, after ``empty_polls`` 404s, with ``answer(username)`` when
the test set one, else ``{"code": codes.get(username)}``. It records each username asked and each
``Authorization`` header sent, and answers a redirect when ``redirect_to`` is set.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

PREFIX = "/codes/"


@dataclass
class Inbox:
    url: str = ""
    codes: dict[str, str] = field(default_factory=dict)
    empty_polls: int = 0
    answer: Callable[[str], Any] | None = None
    redirect_to: str | None = None
    requests: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)

    def template(self) -> str:
        """The URL template a deployment would configure for this relay."""
        return f"{self.url}{PREFIX}{{username}}"


@contextmanager
def serve_inbox() -> Iterator[Inbox]:
    state = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self.path.startswith(PREFIX):
                self.send_error(404)
                return
            user = unquote(self.path.removeprefix(PREFIX))
            state.requests.append(user)
            state.authorizations.append(self.headers.get("Authorization"))
            if state.redirect_to is not None:
                self.send_response(302)
                self.send_header("Location", state.redirect_to)
                self.end_headers()
                return
            if state.empty_polls > 0:
                state.empty_polls -= 1
                self.send_error(404)
                return
            payload = state.answer(user) if state.answer else {"code": state.codes.get(user)}
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
