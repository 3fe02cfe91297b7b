"""Running the console: open the central database, build the app, serve it with uvicorn until SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys

import uvicorn

from ..central import open_central_db
from ..errors import ConsoleError
from .app import create_app
from .settings import ConsoleSettings


def trusted_proxies(forwarded_allow_ips: str) -> list[str]:
    """The configured proxy addresses; `*` (trust every client's headers) is refused."""
    proxies = [p.strip() for p in forwarded_allow_ips.split(",") if p.strip()]
    if "*" in proxies:
        raise ConsoleError("--forwarded-allow-ips '*' would let any client choose the address the login limit "
                           "counts; name the reverse proxies' addresses")
    return proxies


def serve_console(target: str, host: str, port: int, settings: ConsoleSettings,
                  forwarded_allow_ips: str = "") -> None:
    """Serve until SIGTERM or Ctrl-C (then exit 0).

    Only the reverse proxies named in `forwarded_allow_ips` may speak for a client with X-Forwarded-For
    and X-Forwarded-Proto: the login limit then counts real client addresses, and the cookie is marked
    Secure behind TLS. Anyone else's forwarded headers are ignored.
    """
    proxies = trusted_proxies(forwarded_allow_ips)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    with open_central_db(target, create=False) as db:
        app = create_app(db, settings)
        logging.getLogger("churn.console").info("console for %s on http://%s:%d/", db.address, host, port)
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again for the handler that was
        # there before it; with this one the process ends normally, exit status 0, like the aggregator.
        for stop in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop, lambda _signum, _frame: None)
        uvicorn.run(app, host=host, port=port, proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None,
                    timeout_graceful_shutdown=3, log_level="info", server_header=False)
