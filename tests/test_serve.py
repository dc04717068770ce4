"""The CLI around the API: demo (idempotent), token create / revoke, and `serve` as a real
process that answers, refuses without a token and shuts down cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from ledger_cli.main import main

CLI = [sys.executable, "-m", "ledger_cli.main"]


def counts(conn):
    return conn.execute("select (select count(*) from ledger.transactions), (select count(*) from ledger.entries),"
                        " (select count(*) from ledger.accounts)").fetchone()


def test_demo_loads_once_and_prints_an_admin_token(db_url, conn, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["demo"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    loaded = counts(conn)
    assert loaded[0] > 100 and loaded[2] > 10
    assert conn.execute("select role from ledger.api_tokens t where not exists (select 1 from "
                        "ledger.api_token_revocations r where r.token_id = t.id)").fetchall() == [("admin",)]
    assert token.startswith("lct_")
    assert main(["demo"]) == 0
    assert counts(conn) == loaded  # the second run replays: nothing new in the book
    holds = dict(conn.execute("""select h.idempotency_key, coalesce(r.hold_action, 'open') from ledger.transactions h
                                 left join ledger.transactions r on r.resolves_hold_id = h.id
                                 where h.is_hold and h.idempotency_key like 'demo:holds:%'""").fetchall())
    assert sorted(holds.values()) == ["open", "post", "void"]
    reversal = conn.execute("select reverses_id from ledger.transactions where idempotency_key = 'demo:reversal:reverse'")
    assert reversal.fetchone()[0] is not None
    span = conn.execute("select max(effective_at) - min(effective_at) from ledger.transactions").fetchone()[0]
    assert span.days >= 90


def test_token_create_and_revoke(db_url, conn, monkeypatch, capsys):
    from ledger.tokens import principal_for

    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["token", "create", "--role", "holder", "--holder", "U1"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert principal_for(conn, token).holder_id == "U1"
    assert main(["token", "create", "--role", "holder"]) == 2  # a holder token needs --holder
    assert main(["token", "revoke", token]) == 0
    assert principal_for(conn, token) is None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    url = f"http://127.0.0.1:{port}/{'graphql' if body is not None else 'healthz'}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.timeout(120)
def test_serve_answers_and_stops_on_sigterm(db_url, conn):
    from ledger.tokens import create_token

    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url}
    server = subprocess.Popen([*CLI, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        line = server.stdout.readline()
        while line and "serving" not in line:  # "applied: ..." may come first
            line = server.stdout.readline()
        assert f"http://127.0.0.1:{port}/graphql" in line
        for _ in range(100):
            try:
                if request(port)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        token = create_token(conn, "auditor").token
        assert request(port, {"query": "{ trialBalance { balanced } }"})[0] == 401
        status, body = request(port, {"query": "{ trialBalance { balanced } }"}, token)
        assert (status, body) == (200, {"data": {"trialBalance": {"balanced": True}}})
        server.send_signal(signal.SIGTERM)
        rest = server.communicate(timeout=30)[0]
        assert "database pool closed" in rest
        assert server.returncode in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
