"""Commands: serve (the GraphQL API), demo (load the demo book), token create / revoke / list."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

import psycopg

from graphql_api.settings import SERVE_WORKERS_MAX
from ledger.migrate import database_read_only, migrate
from ledger.tokens import Role, create_token, list_tokens, parse_duration, revoke_token
from ledger_cli.config_commands import add_config_option
from ledger_cli.options import add_database_options, connection_url

__all__ = ["register", "serve_address"]

workers_max = SERVE_WORKERS_MAX
graceful_shutdown_s = 30  # in-flight requests get this long to finish after SIGINT/SIGTERM


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("serve", help="apply migrations and serve the GraphQL API")
    add_database_options(parser)
    add_config_option(parser)
    parser.add_argument("--host", default=None, help="default: the serve_host setting (127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="default: the serve_port setting (8000)")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"server processes (1 to {workers_max}); default: the serve_workers setting (1)")
    parser.add_argument("--demo", action="store_true", help="load the demo book (if not loaded) and print an admin token")
    parser.add_argument("--no-webhooks", action="store_true",
                        help="deliver no webhooks from this server (run `ledger-core webhooks deliver` instead)")
    parser.set_defaults(run=_serve)

    parser = subparsers.add_parser("demo", help="load the demo book (idempotent) and print an admin token")
    add_database_options(parser)
    parser.set_defaults(run=_demo)

    parser = subparsers.add_parser("token", help="create, revoke or list API bearer tokens")
    token_commands = parser.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="print a new token on the last line")
    add_database_options(create)
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--holder", default=None, help="holder id (holder tokens only)")
    create.add_argument("--note", default="", help="what the token is for")
    create.add_argument("--expires-in", default=None, metavar="DURATION",
                        help="refuse the token after this long, e.g. 30d, 12h, 15m (default: never)")
    create.set_defaults(run=_token_create)
    revoke = token_commands.add_parser("revoke", help="revoke a token, given the token or its id")
    add_database_options(revoke)
    revoke.add_argument("token", metavar="TOKEN_OR_ID")
    revoke.add_argument("--reason", default="")
    revoke.set_defaults(run=_token_revoke)
    listing = token_commands.add_parser("list", help="every token: id, role, holder, note, created, expires, revoked")
    add_database_options(listing)
    listing.set_defaults(run=_token_list)


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
    expires_in = parse_duration(args.expires_in) if args.expires_in is not None else None
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        issued = create_token(conn, args.role, args.holder, note=args.note, expires_in=expires_in)
    holder = f" for holder {issued.holder_id}" if issued.holder_id else ""
    expires = f", expires {issued.expires_at.isoformat()}" if issued.expires_at else ""
    print(f"token {issued.id}: role {issued.role.value}{holder}{expires} (shown once; stored only as its sha256)")
    print(issued.token)
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        token_id = revoke_token(conn, args.token, reason=args.reason)
    print(f"revoked token {token_id}")
    return 0


def _token_list(args: argparse.Namespace) -> int:
    with psycopg.connect(connection_url(args), autocommit=True) as conn:
        tokens = list_tokens(conn)
    print("\t".join(("id", "role", "holder", "note", "created", "expires", "revoked")))
    for token in tokens:
        print("\t".join((str(token.id), token.role.value, token.holder_id or "-", token.note or "-",
                         token.created_at.isoformat(),
                         token.expires_at.isoformat() if token.expires_at else "never",
                         token.revoked_at.isoformat() if token.revoked_at else "-")))
    return 0


def serve_address(args: argparse.Namespace, settings: Any) -> None:
    """--host, --port and --workers as given, else their settings (environment, file, default)."""
    args.host = args.host if args.host is not None else settings.serve_host
    args.port = args.port if args.port is not None else settings.serve_port
    args.workers = args.workers if args.workers is not None else settings.serve_workers


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from graphql_api.app import DATABASE_URL_ENV, DELIVER_WEBHOOKS_ENV, create_app
    from graphql_api.logs import log_config
    from graphql_api.settings import api_settings, configured_limits
    from graphql_api.worker_lifetime import PARENT_PID_ENV

    serve_address(args, api_settings())
    if not 1 <= args.workers <= workers_max:
        print(f"error: --workers must be between 1 and {workers_max}", file=sys.stderr)
        return 2
    url = connection_url(args)
    applied = migrate(url)
    if applied:
        print("applied: " + ", ".join(applied))
    with psycopg.connect(url, autocommit=True) as conn:
        if database_read_only(conn):
            print("note: the database is read-only (a standby, or default_transaction_read_only is on): "
                  "the schema is up to date and queries are served; mutations will be refused", flush=True)
    if args.demo:
        token = _load_demo(url)
        print(f"demo book loaded; admin token: {token}")
        print(f"  try: curl -s http://{args.host}:{args.port}/graphql -H 'Authorization: Bearer {token}' "
              "-H 'Content-Type: application/json' "
              "-d '{\"query\": \"{ account(code: \\\"liabilities:wallets:U1001\\\") "
              "{ balance { available { formatted } } } }\"}'")
    print(f"serving the ledger GraphQL API at http://{args.host}:{args.port}/graphql (GraphiQL in a browser); "
          "Ctrl-C stops", flush=True)
    # uvicorn handles SIGINT/SIGTERM: it stops accepting, lets in-flight requests finish, and runs
    # the app's shutdown, which closes the pool.
    limits = configured_limits()  # the workers read the same settings (app_from_env)
    options: dict[str, Any] = {"host": args.host, "port": args.port, "log_level": "warning", "access_log": False,
                               "timeout_graceful_shutdown": graceful_shutdown_s,
                               "ws_max_size": limits.body_bytes_max,
                               "log_config": log_config()}  # JSON lines on stderr (graphql_api/logs.py)
    # uvicorn re-raises the signal after its graceful shutdown; exit normally then instead, so
    # exit handlers run (they stop an embedded PostgreSQL this process started).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.workers == 1:
        uvicorn.run(create_app(url, limits=limits, announce=lambda line: print(line, flush=True),
                               deliver_webhooks=not args.no_webhooks), **options)
    else:
        os.environ[DATABASE_URL_ENV] = url
        os.environ[DELIVER_WEBHOOKS_ENV] = "0" if args.no_webhooks else "1"
        os.environ[PARENT_PID_ENV] = str(os.getpid())  # workers end when this process does
        uvicorn.run("graphql_api.app:app_from_env", factory=True, workers=args.workers, **options)
    return 0
