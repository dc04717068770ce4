"""Token expiry (an expired token is a 401, like a revoked one), `token list` (never the secret
or its hash) and `--expires-in`."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from graphql_api.app import create_app
from graphql_api.context import Limits
from ledger.errors import ValidationError
from ledger.tokens import create_token, list_tokens, parse_duration, principal_for, revoke_token
from ledger_cli.main import main

QUERY = {"query": "{ trialBalance { balanced } }"}


def test_an_expired_token_is_refused_with_401(db_url, conn):
    short = create_token(conn, "auditor", expires_in=timedelta(seconds=1))
    lasting = create_token(conn, "auditor", expires_in=timedelta(days=30))
    assert principal_for(conn, short.token) is not None
    with TestClient(create_app(db_url, limits=Limits(token_cache_ttl_s=0))) as client:
        assert client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {short.token}"}).status_code == 200
        time.sleep(1.2)
        refused = client.post("/graphql", json=QUERY, headers={"Authorization": f"Bearer {short.token}"})
        assert refused.status_code == 401
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert client.post("/graphql", json=QUERY,
                           headers={"Authorization": f"Bearer {lasting.token}"}).status_code == 200
    assert principal_for(conn, short.token) is None


def test_durations():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("90s") == timedelta(seconds=90)
    for bad in ("", "30", "0d", "-1d", "1w", "1.5d", "d"):
        with pytest.raises(ValidationError) as refused:
            parse_duration(bad)
        assert refused.value.field == "expires_in"


def test_token_list_shows_everything_but_the_secret(db_url, conn, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["token", "create", "--role", "holder", "--holder", "U7", "--note", "phone",
                 "--expires-in", "30d"]) == 0
    created = capsys.readouterr().out
    secret = created.strip().splitlines()[-1]
    assert "expires" in created
    other = create_token(conn, "operator", note="batch")
    revoke_token(conn, str(other.id))
    assert main(["token", "list"]) == 0
    listing = capsys.readouterr().out
    lines = listing.strip().splitlines()
    assert lines[0].split("\t") == ["id", "role", "holder", "note", "created", "expires", "revoked"]
    holder_row, operator_row = (line.split("\t") for line in lines[1:])
    assert holder_row[1:4] == ["holder", "U7", "phone"] and holder_row[6] == "-"
    assert holder_row[5] != "never"
    assert operator_row[1:4] == ["operator", "-", "batch"] and operator_row[5] == "never"
    assert operator_row[6] != "-"
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in listing and digest not in listing and secret[4:20] not in listing
    infos = list_tokens(conn)
    assert [i.role.value for i in infos] == ["holder", "operator"]
    assert infos[0].expires_at is not None and infos[1].revoked_at is not None


def test_token_create_refuses_a_bad_expiry(db_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["token", "create", "--role", "admin", "--expires-in", "forever"]) == 2
    assert "VALIDATION" in capsys.readouterr().err
