"""Settings from the environment, a TOML file, or defaults: precedence, every limit covered, bad
values named at start-up without a traceback, secrets masked by `ledger-core config`, and a
served app and the business calendar obeying what is configured."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys

import pytest
from starlette.testclient import TestClient

from graphql_api.app import create_app
from graphql_api.context import Limits
from graphql_api.settings import ApiSettings, configured_limits
from ledger import calendar
from ledger.cursor_keys import cursor_key
from ledger.database import database_url
from ledger.settings import CONFIG_FILE_ENV, SettingsInvalid
from ledger.tokens import create_token
from ledger_cli.main import main
from ledger_cli.serve_commands import serve_address

VARIABLES = ["DATABASE_URL", "LEDGER_BUSINESS_TIME_ZONE", "LEDGER_CURSOR_KEY", CONFIG_FILE_ENV,
             *(f"LEDGER_{f.name.upper()}" for f in dataclasses.fields(Limits)),
             "LEDGER_SERVE_HOST", "LEDGER_SERVE_PORT", "LEDGER_SERVE_WORKERS"]


@pytest.fixture
def clean_env(monkeypatch):
    """No setting from the test run's own environment (DATABASE_URL is kept aside and restored)."""
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def write(tmp_path, text, name="ledger.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_limit_is_a_setting_with_its_variable():
    assert {f.name for f in dataclasses.fields(Limits)} <= set(ApiSettings.model_fields)
    for f in dataclasses.fields(Limits):
        assert ApiSettings.variable(f.name) == f"LEDGER_{f.name.upper()}"


def test_defaults_are_the_limits(clean_env):
    assert configured_limits() == Limits()
    assert str(calendar.business_time_zone()) == "Asia/Shanghai"


def test_environment_overrides_defaults(clean_env):
    clean_env.setenv("LEDGER_POOL_SIZE_MAX", "16")
    clean_env.setenv("LEDGER_TOKEN_CACHE_TTL_S", "1")
    clean_env.setenv("LEDGER_BUSINESS_TIME_ZONE", "Europe/London")
    limits = configured_limits()
    assert (limits.pool_size_max, limits.token_cache_ttl_s, limits.page_size_max) == (16, 1, 500)
    assert str(calendar.business_time_zone()) == "Europe/London"


def test_file_overrides_defaults_and_the_environment_overrides_the_file(clean_env, tmp_path):
    path = write(tmp_path, 'pool_size_max = 12\npage_size_max = 50\npage_size_default = 20\n'
                           'business_time_zone = "America/Santiago"\ncursor_key = "' + "ab" * 16 + '"\n'
                           'database_url = "postgresql://ledger:pw@db.internal/ledger"\nserve_port = 9001\n')
    clean_env.setenv(CONFIG_FILE_ENV, str(path))
    limits = configured_limits()
    assert (limits.pool_size_max, limits.page_size_max, limits.page_size_default) == (12, 50, 20)
    assert str(calendar.business_time_zone()) == "America/Santiago"
    assert cursor_key(None) == bytes.fromhex("ab" * 16)  # type: ignore[arg-type] - the file's key needs no database
    assert database_url() == "postgresql://ledger:pw@db.internal/ledger"
    clean_env.setenv("LEDGER_POOL_SIZE_MAX", "3")
    clean_env.setenv("LEDGER_BUSINESS_TIME_ZONE", "Asia/Tokyo")
    assert configured_limits().pool_size_max == 3 and configured_limits().page_size_max == 50
    assert str(calendar.business_time_zone()) == "Asia/Tokyo"
    # Command-line flags come before both.
    args = argparse.Namespace(host=None, port=None, workers=2)
    from graphql_api.settings import api_settings
    serve_address(args, api_settings())
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 9001, 2)


def test_a_served_app_obeys_the_configured_limits(clean_env, tmp_path, db_url, conn):
    clean_env.setenv(CONFIG_FILE_ENV, str(write(tmp_path, "page_size_max = 3\npage_size_default = 2\n")))
    token = create_token(conn, "admin").token
    with TestClient(create_app(db_url, limits=configured_limits())) as client:
        answer = client.post("/graphql", headers={"Authorization": f"Bearer {token}"},
                             json={"query": "{ accounts(first: 4) { edges { cursor } } }"}).json()
    assert answer["errors"][0]["extensions"] == {"code": "VALIDATION", "field": "first"}
    assert "between 0 and 3" in answer["errors"][0]["message"]


@pytest.mark.parametrize(("where", "text", "named"), [
    ("env", "LEDGER_POOL_SIZE_MAX=lots", "setting pool_size_max (from the environment variable LEDGER_POOL_SIZE_MAX)"),
    ("env", "LEDGER_STATEMENT_TIMEOUT_MS=0", "setting statement_timeout_ms"),
    ("env", "LEDGER_BUSINESS_TIME_ZONE=Mars/Olympus", "setting business_time_zone"),
    ("env", "LEDGER_CURSOR_KEY=abcd", "setting cursor_key"),
    ("env", "LEDGER_SERVE_WORKERS=99", "setting serve_workers"),
    ("file", "pool_size_min = 9\npool_size_max = 4\n", "pool_size_min (9) exceeds pool_size_max (4)"),
    ("file", 'page_size_max = "many"\n', "setting page_size_max (from the settings file"),
    ("file", "pool_size_mx = 4\n", "names no setting pool_size_mx"),
    ("file", "pool_size_max = \n", "is not TOML"),
])
def test_an_invalid_setting_is_named_at_start_up(clean_env, tmp_path, capsys, where, text, named):
    if where == "env":
        variable, value = text.split("=", 1)
        clean_env.setenv(variable, value)
    else:
        clean_env.setenv(CONFIG_FILE_ENV, str(write(tmp_path, text)))
    assert main(["config"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: SETTINGS_INVALID: ") and named in error, error
    assert "Traceback" not in error


def test_a_missing_settings_file_is_named(clean_env, tmp_path, capsys):
    assert main(["--config", str(tmp_path / "nope.toml"), "config"]) == 2
    assert "nope.toml does not exist" in capsys.readouterr().err


def test_a_setting_invalid_later_is_still_a_typed_error(clean_env):
    clean_env.setenv("LEDGER_BUSINESS_TIME_ZONE", "Mars/Olympus")
    with pytest.raises(calendar.BusinessTimeZoneInvalid):
        calendar.business_time_zone()
    with pytest.raises(SettingsInvalid, match="setting business_time_zone"):
        from ledger.settings import CoreSettings, load
        load(CoreSettings)


def test_config_prints_values_sources_and_masks_secrets(clean_env, tmp_path):
    """Through the installed command line, as an operator runs it."""
    path = write(tmp_path, 'pool_size_max = 12\ndatabase_url = "postgresql://ledger:file-secret@db/ledger"\n')
    key = "0123456789abcdef" * 2
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env.update({"LEDGER_PAGE_SIZE_MAX": "400", "LEDGER_CURSOR_KEY": key,
                "DATABASE_URL": "postgresql://ledger:env-secret@db.internal:5432/ledger?password=again"})
    done = subprocess.run([sys.executable, "-m", "ledger_cli.main", "config", "--config", str(path)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[2:]}
    assert rows["pool_size_max"][1:] == ["12", "file", "LEDGER_POOL_SIZE_MAX"]
    assert rows["page_size_max"][1:] == ["400", "env", "LEDGER_PAGE_SIZE_MAX"]
    assert rows["page_size_default"][1:] == ["100", "default", "LEDGER_PAGE_SIZE_DEFAULT"]
    assert rows["business_time_zone"][1:] == ["Asia/Shanghai", "default", "LEDGER_BUSINESS_TIME_ZONE"]
    assert rows["database_url"][1:] == ["postgresql://ledger:********@db.internal:5432/ledger?password=********",
                                        "env", "DATABASE_URL"]
    assert rows["cursor_key"][1:] == ["********", "env", "LEDGER_CURSOR_KEY"]
    assert str(path) in done.stdout.splitlines()[0]
    assert "secret" not in done.stdout and "again" not in done.stdout and key not in done.stdout
    assert {f.name for f in dataclasses.fields(Limits)} <= set(rows)
    for name in ("serve_host", "serve_port", "serve_workers"):
        assert name in rows

    conninfo = subprocess.run([sys.executable, "-m", "ledger_cli.main", "config"],
                              env={**env, "DATABASE_URL": "host=db user=ledger password='s3 cret' dbname=x"},
                              capture_output=True, text=True, timeout=120)
    assert "s3" not in conninfo.stdout and "password=********" in conninfo.stdout
