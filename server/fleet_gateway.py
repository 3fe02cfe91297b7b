"""The stores' door to the federation: Flower's Fleet API, and nothing else of the SuperLink.

Flower 1.42's SuperLink serves its Fleet API (what SuperNodes use), its
Control API (`flwr run`, `flwr supernode register`: start code on the central
server, add a store) and its Runtime API (the ServerApp's) on one HTTPS port.
The account authentication that would guard the Control API belongs to
Flower's enterprise edition. So the SuperLink listens on loopback only, where
the operator's `flwr` and `churn-server federate` reach it, and this gateway
listens on the address the stores use: it forwards `POST /v1/fleet/...`, with
its headers (the SuperNode's signature) and body untouched, to the loopback
SuperLink, and answers 404 to every other path. SuperNode authentication is
the SuperLink's own, as before; a registration attempt through the gateway is
refused by the SuperLink (`--enable-supernode-auth`).
"""

from __future__ import annotations

import logging
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from models.contracts import ContractError

FLEET_PREFIX = "/v1/fleet/"
MAX_BODY_BYTES = 64 * 1024 * 1024  # a SuperNode's largest request is one object of the model: far less
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "content-length"}
log = logging.getLogger("churn.fleet_gateway")


@dataclass(frozen=True)
class GatewaySettings:
    listen_host: str
    listen_port: int
    superlink: str  # host:port of the SuperLink's loopback HTTPS API
    certfile: Path
    keyfile: Path
    ca_file: Path
    timeout_seconds: float = 120.0

    def __post_init__(self) -> None:
        host, _, port = self.superlink.rpartition(":")
        if not host or not port.isdigit():
            raise ContractError(f"--superlink {self.superlink!r} must be HOST:PORT, e.g. 127.0.0.1:9093")
        for path in (self.certfile, self.keyfile, self.ca_file):
            if not path.is_file():
                raise ContractError(f"{path} does not exist")


def _upstream_tls(ca_file: Path) -> ssl.SSLContext:
    """The SuperLink's certificate must come from the chain's CA; on loopback its host name is not checked."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.check_hostname = False
    return context


def create_gateway(settings: GatewaySettings) -> Starlette:
    client = httpx.AsyncClient(base_url=f"https://{settings.superlink}", verify=_upstream_tls(settings.ca_file),
                               timeout=settings.timeout_seconds)

    async def forward(request: Request) -> Response:
        path = request.url.path
        if request.method != "POST" or not path.startswith(FLEET_PREFIX) or ".." in path:
            return JSONResponse({"detail": "not served to stores"}, status_code=404)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return JSONResponse({"detail": "request too large"}, status_code=413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return JSONResponse({"detail": "request too large"}, status_code=413)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            upstream = await client.post(path, content=bytes(body), headers=headers)
        except httpx.HTTPError as exc:
            log.warning("the SuperLink at %s did not answer %s: %s", settings.superlink, path, type(exc).__name__)
            return JSONResponse({"detail": "the SuperLink is unavailable"}, status_code=503)
        kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
        return Response(upstream.content, status_code=upstream.status_code, headers=kept)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    routes = [Route("/{path:path}", forward, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])]
    return Starlette(routes=routes, lifespan=lifespan)


def serve_gateway(settings: GatewaySettings) -> None:
    """Serve until SIGTERM or Ctrl-C (then exit 0), TLS with the SuperLink's certificate."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    for chatty in ("httpx", "httpcore"):  # a line per forwarded request otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    log.info("fleet gateway on https://%s:%d/ for the SuperLink at %s", settings.listen_host, settings.listen_port,
             settings.superlink)
    for stop in (signal.SIGTERM, signal.SIGINT):  # uvicorn stops gracefully, then re-raises to these: exit 0
        signal.signal(stop, lambda _signum, _frame: None)
    uvicorn.run(create_gateway(settings), host=settings.listen_host, port=settings.listen_port,
                ssl_certfile=str(settings.certfile), ssl_keyfile=str(settings.keyfile), log_level="warning",
                server_header=False, timeout_graceful_shutdown=3, h11_max_incomplete_event_size=64 * 1024)
