"""Security headers on every response, and the anonymous browser id that CSRF tokens hang on before sign-in."""

from __future__ import annotations

from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.codes import new_token

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self';"
    " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https
        self.anon_cookie = "__Host-hub_anon" if https else "hub_anon"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        anon_id, is_new = self._anon_id(scope)
        scope.setdefault("state", {})["anon_id"] = anon_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
                if self.https:
                    headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
                # Pages carry health data: never kept in shared caches or the back-forward cache by default.
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if is_new and headers.get("content-type", "").startswith("text/html"):
                    secure = "; Secure" if self.https else ""
                    headers.append(
                        "Set-Cookie", f"{self.anon_cookie}={anon_id}; Path=/; HttpOnly; SameSite=Lax{secure}"
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _anon_id(self, scope: Scope) -> tuple[str, bool]:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookie: SimpleCookie = SimpleCookie()
                try:
                    cookie.load(value.decode("latin-1"))
                except Exception:  # a mangled Cookie header is treated as no cookie
                    continue
                morsel = cookie.get(self.anon_cookie)
                if morsel and 20 <= len(morsel.value) <= 64:
                    return morsel.value, False
        return new_token(), True
