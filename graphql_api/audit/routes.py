"""`GET /statements/{code}.csv?from=&to=[&knownAt=]` (also `.json` and `.pdf`): a statement file.

Same auth and roles as GraphQL: a bearer token (401 without one); a holder only for its own
accounts (any other account is 404, as if it did not exist, like the GraphQL `statement`).
`from` and `to` are ISO dates (the start of that business day, ledger/calendar.py) or date-times
with an offset; the period is [from, to). The figures are the GraphQL statement's; the cut
(`knownAt`) and the journal position are in the file and in the `X-Statement-Known-At` and `X-Journal-Position` headers.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from graphql_api.audit.queries import cut_in_one_snapshot
from graphql_api.context import app_state, authenticate
from graphql_api.errors import StatementTimeout
from ledger import calendar
from ledger.accounts import get_account
from ledger.errors import AccountNotFound, LedgerError, ValidationError
from ledger.statement_export import render

__all__ = ["STATEMENT_ROUTES"]

_MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "pdf": "application/pdf"}


def _error(status: int, exc: LedgerError) -> JSONResponse:
    body = {"error": {"code": exc.code, "message": exc.message, "field": getattr(exc, "field", "")}}
    return JSONResponse(body, status_code=status)


async def export_statement(request: Request) -> Response:
    principal = await authenticate(request)
    fmt = request.url.path.rsplit(".", 1)[-1]
    code = request.path_params["code"]
    state = app_state(request)
    try:
        params = request.query_params
        for name in ("from", "to"):
            if name not in params:
                raise ValidationError(f"the query parameter {name} is required (an ISO date or date-time)", field=name)
        start = calendar.parse_instant(params["from"], field="from")
        end = calendar.parse_instant(params["to"], field="to")
        known_at = calendar.parse_instant(params["knownAt"], field="knownAt") if "knownAt" in params else None
        account = await state.run(get_account, code)
        if not principal.may_see(account):
            raise AccountNotFound(f"no account with code {code}", account=code)
        statement = await state.run(cut_in_one_snapshot, code, start, end, known_at)
        # Off the event loop: a long PDF takes seconds of CPU, and every other request would wait.
        body = await anyio.to_thread.run_sync(render, statement, fmt)
    except AccountNotFound as exc:
        return _error(404, exc)
    except StatementTimeout as exc:
        return _error(503, exc)
    except LedgerError as exc:
        return _error(400, exc)
    filename = f"statement-{code.replace(':', '_')}-{start.date().isoformat()}-{end.date().isoformat()}.{fmt}"
    return Response(body, media_type=_MEDIA_TYPES[fmt], headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Statement-Known-At": statement.known_at.isoformat(),
        "X-Journal-Position": str(statement.position),
        "Cache-Control": "no-store",
    })


STATEMENT_ROUTES: list[BaseRoute] = [
    Route(f"/statements/{{code}}.{fmt}", export_statement, methods=["GET"]) for fmt in ("csv", "json", "pdf")
]
