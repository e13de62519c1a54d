"""A small threaded HTTP server for the fakes of other services (NHS login, the Aggregator): real HTTP on 127.0.0.1,
routes as methods, JSON and form bodies, started and stopped with `with`."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc.jwk import KeyParameters, RSAKey

_KEYS: list[RSAKey] = []
_handed = itertools.count()


def new_key(*, parameters: KeyParameters) -> RSAKey:
    """An RSA key with this kid. Keys are made once and handed out in turn under new kids: generating a 2048-bit
    key takes a noticeable time, and the fakes need several per test (any eight in a row differ)."""
    turn = next(_handed) % 8
    if turn == len(_KEYS):
        _KEYS.append(RSAKey.generate_key(2048, private=True))
    return RSAKey.import_key(_KEYS[turn].as_dict(private=True), parameters=parameters)


class Reply:
    def __init__(self, status: int, body: Any = None, *, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


class Incoming:
    def __init__(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}

    def json(self) -> Any:
        return json.loads(self.body)

    def bearer(self) -> str:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""


class FakeServer:
    """Subclasses fill `routes`: (method, path) -> handler(Incoming) -> Reply."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Callable[[Incoming], Reply]] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                incoming = Incoming(
                    self.command,
                    parts.path,
                    {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                route = fake.routes.get((self.command, parts.path))
                reply = route(incoming) if route else Reply(404, {"error": "not_found"})
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # Polled often: shutdown() waits for the next poll (half a second by default), on every test that uses a fake.
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
