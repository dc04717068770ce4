"""Liveness and readiness, for an orchestrator; no token needed (they hold no data).

`GET /livez`: the process answers (no database), so a stuck event loop is restarted but a
database outage restarts nothing. `GET /readyz`: the database answers and its schema is the one
this code expects (no migration or definition pending), so traffic waits for `ledger-core
migrate` after a deploy. `GET /healthz` (in app.py) stays what load balancers already use.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from graphql_api.context import app_state
from ledger.migrate import Definition, Migration, definitions, migrations, pending

__all__ = ["HEALTH_ROUTES"]

log = logging.getLogger("graphql_api.health")
pending_shown_max = 20


async def livez(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@functools.cache
def _expected() -> tuple[list[Migration], list[Definition]]:
    # The files this process was started with: what its code expects of the schema.
    return migrations(), definitions()


def _pending(conn: Any) -> list[str]:
    return pending(conn, *_expected())


async def readyz(request: Request) -> Response:
    try:
        waiting = await app_state(request).run(_pending)
    except Exception:  # reported as not ready, and logged
        log.exception("readyz: database unreachable")
        return JSONResponse({"status": "unavailable", "reason": "database unreachable"}, status_code=503)
    if waiting:
        return JSONResponse({"status": "unavailable", "reason": "migrations pending (run ledger-core migrate)",
                             "pending": waiting[:pending_shown_max], "pendingCount": len(waiting)},
                            status_code=503)
    return JSONResponse({"status": "ok"})


HEALTH_ROUTES: list[BaseRoute] = [
    Route("/livez", livez, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
