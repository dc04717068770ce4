"""Commands: serve (the GraphQL API), demo (load the demo book), token create / revoke."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

import psycopg

from ledger_cli.options import add_database_options, connection_url
from ledger.migrate import migrate
from ledger.tokens import Role, create_token, revoke_token

__all__ = ["register"]

workers_max = 16
graceful_shutdown_s = 30  # in-flight requests get this long to finish after SIGINT/SIGTERM


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="apply migrations and serve the GraphQL API")
    add_database_options(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help=f"server processes (1 to {workers_max})")
    parser.add_argument("--demo", action="store_true", help="load the demo book (if not loaded) and print an admin token")
    parser.set_defaults(run=_serve)

    parser = subparsers.add_parser("demo", help="load the demo book (idempotent) and print an admin token")
    add_database_options(parser)
    parser.set_defaults(run=_demo)

    parser = subparsers.add_parser("token", help="create or revoke API bearer tokens")
    token_commands = parser.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="print a new token on the last line")
    add_database_options(create)
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--holder", default=None, help="holder id (holder tokens only)")
    create.add_argument("--note", default="", help="what the token is for")
    create.set_defaults(run=_token_create)
    revoke = token_commands.add_parser("revoke", help="revoke a token, given the token or its id")
    add_database_options(revoke)
    revoke.add_argument("token", metavar="TOKEN_OR_ID")
    revoke.add_argument("--reason", default="")
    revoke.set_defaults(run=_token_revoke)


def _load_demo(url: str) -> str:
    from ledger.demo.loader import load_demo

    with psycopg.connect(url, autocommit=True) as conn:
        load_demo(conn, say=lambda line: print(line, file=sys.stderr))
        return create_token(conn, Role.ADMIN, note="demo").token


def _demo(args: argparse.Namespace) -> int:
    url = connection_url(args)
    migrate(url)
    token = _load_demo(url)
    print("demo book loaded; an admin token:")
    print(token)
    return 0


def _token_create(args: argparse.Namespace) -> int:
    url = connection_url(args)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        issued = create_token(conn, args.role, args.holder, note=args.note)
    holder = f" for holder {issued.holder_id}" if issued.holder_id else ""
    print(f"token {issued.id}: role {issued.role.value}{holder} (shown once; stored only as its sha256)")
    print(issued.token)
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        token_id = revoke_token(conn, args.token, reason=args.reason)
    print(f"revoked token {token_id}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from graphql_api.app import DATABASE_URL_ENV, create_app
    from graphql_api.context import Limits
    from graphql_api.logs import log_config

    if not 1 <= args.workers <= workers_max:
        print(f"error: --workers must be between 1 and {workers_max}", file=sys.stderr)
        return 2
    url = connection_url(args)
    applied = migrate(url)
    if applied:
        print("applied: " + ", ".join(applied))
    if args.demo:
        token = _load_demo(url)
        print(f"demo book loaded; admin token: {token}")
        print(f"  try: curl -s http://{args.host}:{args.port}/graphql -H 'Authorization: Bearer {token}' "
              "-H 'Content-Type: application/json' "
              "-d '{\"query\": \"{ account(code: \\\"liabilities:wallets:U1001\\\") { balance { available { formatted } } } }\"}'")
    print(f"serving the ledger GraphQL API at http://{args.host}:{args.port}/graphql (GraphiQL in a browser); "
          "Ctrl-C stops", flush=True)
    # uvicorn handles SIGINT/SIGTERM: it stops accepting, lets in-flight requests finish, and runs
    # the app's shutdown, which closes the pool.
    limits = Limits()
    options: dict[str, Any] = {"host": args.host, "port": args.port, "log_level": "warning", "access_log": False,
                               "timeout_graceful_shutdown": graceful_shutdown_s,
                               "ws_max_size": limits.body_bytes_max,
                               "log_config": log_config()}  # JSON lines on stderr (graphql_api/logs.py)
    # uvicorn re-raises the signal after its graceful shutdown; exit normally then instead, so
    # exit handlers run (they stop an embedded PostgreSQL this process started).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.workers == 1:
        uvicorn.run(create_app(url, announce=lambda line: print(line, flush=True)), **options)
    else:
        os.environ[DATABASE_URL_ENV] = url
        uvicorn.run("graphql_api.app:app_from_env", factory=True, workers=args.workers, **options)
    return 0
