"""Security headers on every response, and the anonymous browser id that CSRF tokens hang on before sign-in."""

from __future__ import annotations

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.rules.codes import new_token

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self';"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https
        self.anon_cookie = "__Host-hub_anon" if https else "hub_anon"
        fixed = {
            "content-security-policy": CSP,
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "no-referrer",
            "cross-origin-opener-policy": "same-origin",
            "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
        }
        if https:
            fixed["strict-transport-security"] = "max-age=63072000; includeSubDomains"
        # Encoded once: these go on every response, in place of any the handler set.
        self._fixed = [(name.encode(), value.encode()) for name, value in fixed.items()]
        self._fixed_names = {name for name, _ in self._fixed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        anon_id, is_new = self._anon_id(scope)
        scope.setdefault("state", {})["anon_id"] = anon_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() not in self._fixed_names]
                names = {k.lower() for k, _ in headers}
                headers += self._fixed
                # Pages carry health data: never kept in shared caches or the back-forward cache by default.
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if is_new and self._is_html(headers):
                    secure = "; Secure" if self.https else ""
                    cookie = f"{self.anon_cookie}={anon_id}; Path=/; HttpOnly; SameSite=Lax{secure}"
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
        return any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)

    def _anon_id(self, scope: Scope) -> tuple[str, bool]:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                found = cookie_parser(value.decode("latin-1")).get(self.anon_cookie, "")
                if 20 <= len(found) <= 64:
                    return found, False
        return new_token(), True
