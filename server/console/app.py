"""The console application: the API routers, the event stream and the page, over one central database.

The page (static/) is plain HTML, CSS and JavaScript shipped inside the
package, with charts drawn as inline SVG: it works on a network with no way
out. FastAPI's interactive docs would load from a CDN, so they are off; the
API is described by /openapi.json.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError

from ..central import CentralDb, CentralDbError, driver_message
from . import api_alerts, api_results, api_session, api_stores, api_users, events
from .guard import Guard
from .settings import ConsoleSettings

STATIC = Path(__file__).resolve().parent / "static"


def create_app(db: CentralDb, settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.broadcaster.close()

    app = FastAPI(title="Churn early warning console", version="1", docs_url=None, redoc_url=None,
                  lifespan=lifespan,
                  description="Alerts, store health, footfall, model rounds and measured uplift. Log in with "
                              "POST /api/login; send the returned csrf_token as X-CSRF-Token on every change.")
    app.state.db = db
    app.state.settings = settings
    app.state.broadcaster = events.Broadcaster(db, settings.poll_seconds)
    for module in (api_session, api_users, api_alerts, api_stores, api_results, events):
        app.include_router(module.router)
    app.include_router(api_alerts.actions_router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming the field and the rule, never echoing the input (it may be Infinity, or 30 KB of junk)."""
        return JSONResponse({"detail": [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "invalid")),
                                         "type": str(e.get("type", ""))} for e in exc.errors()]}, status_code=422)

    @app.exception_handler(CentralDbError)
    async def database_unavailable(_request: Request, exc: CentralDbError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(OperationalError)
    async def database_gone(_request: Request, exc: OperationalError) -> JSONResponse:
        return JSONResponse({"detail": f"central database unavailable: {driver_message(exc)}"}, status_code=503)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guard, allowed_origins=settings.origins)
    return app
