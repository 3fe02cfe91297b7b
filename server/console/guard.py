"""The outer layer of every response: request size, cross-origin refusal and security headers (plain ASGI).

A request body larger than `MAX_BODY_BYTES` is refused with 413 before any
route sees it (by its Content-Length, or while it streams in): the API's
bodies are a few hundred bytes, and a 30 MB one must not be read whole.

A state-changing request whose `Origin` is not the console's own (the Host
it was sent to, or one of `--public-origin`), or that the browser marks
`Sec-Fetch-Site: cross-site`, is refused with 403 before any route runs.
Together with the SameSite=Strict cookie and the per-session CSRF token this
closes cross-site request forgery, the login form included. Plain ASGI rather
than Starlette's BaseHTTPMiddleware, so the event stream is never buffered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY_BYTES = 64 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
           (b"x-frame-options", b"DENY"), (b"content-security-policy", PAGE_POLICY.encode())]


def origin_allowed(origin: str, host: str, allowed: Iterable[str]) -> bool:
    """Configured, or the same host and port as the request's Host header.

    The scheme is not compared: behind a TLS proxy the page is https while
    the console itself answers plain http. A Host without a port matches an
    origin on its scheme's default port.
    """
    origin = origin.strip().lower().rstrip("/")
    if origin in {a.lower().rstrip("/") for a in allowed}:
        return True
    theirs, ours = urlsplit(origin), urlsplit("//" + host.strip().lower())
    if theirs.scheme not in DEFAULT_PORTS or not theirs.hostname or theirs.hostname != ours.hostname:
        return False  # "null" (a sandboxed frame, a file), another host, or garbage
    try:
        their_port = theirs.port or DEFAULT_PORTS[theirs.scheme]
        return their_port == ours.port if ours.port else their_port == DEFAULT_PORTS[theirs.scheme]
    except ValueError:
        return False


class Guard:
    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()):
        self.app = app
        self.allowed = frozenset(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal:
            await _refuse(send, 403, refusal)
            return
        if scope["method"] not in SAFE_METHODS:
            body = await _bounded_body(receive, headers)
            if body is None:
                await _refuse(send, 413, f"request body larger than {MAX_BODY_BYTES} bytes")
                return
            receive = _replay(body, receive)
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS,
                                      *([(b"cache-control", b"no-store")] if api else [])]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> str | None:
        if scope["method"] in SAFE_METHODS:
            return None
        if headers.get("sec-fetch-site") == "cross-site":
            return "cross-site request refused"
        origin = headers.get("origin")
        if origin is not None and not origin_allowed(origin, headers.get("host", ""), self.allowed):
            return f"cross-origin request from {origin} refused"
        return None


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *HEADERS]})
    await send({"type": "http.response.body", "body": body})


async def _bounded_body(receive: Receive, headers: dict[str, str]) -> bytes | None:
    """The whole request body, or None once it is known to exceed MAX_BODY_BYTES (without reading the rest)."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body read already, then what the server says (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
