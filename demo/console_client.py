"""Reading the console's API as an operator's script would: log in, then GET with the session cookie."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from typing import Any


class ConsoleClient:
    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.csrf_token = ""

    def login(self, username: str, password: str) -> dict[str, Any]:
        session = self._send("POST", "/api/login", {"username": username, "password": password})
        self.csrf_token = session["csrf_token"]
        return session

    def get(self, path: str, **query: Any) -> Any:
        pairs = [(k, v) for k, value in query.items() if value is not None
                 for v in (value if isinstance(value, (list, tuple)) else [value])]
        suffix = "?" + urllib.parse.urlencode(pairs) if pairs else ""
        return self._send("GET", path + suffix)

    def all_alerts(self, **filters: Any) -> list[dict[str, Any]]:
        """Every page of the alert queue."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.get("/api/alerts", limit=500, offset=len(found), **filters)
            found += page["alerts"]
            if not page["alerts"] or len(found) >= page["total"]:
                return found

    def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if method != "GET" and self.csrf_token:
            request.add_header("X-CSRF-Token", self.csrf_token)
        try:
            with self.opener.open(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise OSError(f"console {method} {path}: HTTP {error.code} {error.read()[:200]!r}") from None
        return json.loads(raw) if raw else None
