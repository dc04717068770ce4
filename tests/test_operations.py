"""What an operations team runs the ledger with, through HTTP: liveness and readiness, the
version, Prometheus metrics and JSON logs carrying the request id."""

from __future__ import annotations

import pytest

from ledger_cli.main import main


def test_version_is_the_package_version(capsys):
    import importlib.metadata

    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.strip() == f"ledger-core {importlib.metadata.version('ledger-core')}"


def test_livez_and_readyz_on_a_current_database(api):
    assert api.client.get("/livez").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})


def test_readyz_503_while_a_migration_or_definition_is_pending(api, conn):
    conn.execute("update ledger.schema_definitions set checksum = 'old' where name = 'chain'")
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["pending"] == ["functions/chain.sql"]
    conn.execute("delete from ledger.schema_migrations where version = (select max(version) from ledger.schema_migrations)")
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["pendingCount"] == 2
    assert api.client.get("/livez").status_code == 200  # the process itself is fine


def test_readyz_503_on_a_database_never_migrated_while_livez_answers(api, conn):
    conn.execute("drop schema ledger cascade")  # this test's own database, as if never migrated
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["reason"].startswith("migrations pending")
    assert ready.json()["pending"][0] == "0001_core.sql" and ready.json()["pendingCount"] > 10
    assert api.client.get("/livez").json() == {"status": "ok"}
    assert api.client.get("/healthz").status_code == 200  # unchanged: the database answers


POST = """mutation Pay($input: PostTransactionInput!) { postTransaction(input: $input) { __typename
  ... on LedgerError { code } } }"""


def pay(api, key, legs):
    entries = [{"accountCode": code, "side": side, "amount": str(amount)} for code, side, amount in legs]
    body = api.data(POST, {"input": {"idempotencyKey": key, "kind": "wallet.top_up", "entries": entries}})
    return body["postTransaction"]


def scrape(api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    response = api.client.get("/metrics")  # no token: an operator network scrapes without one
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def test_metrics_count_operations_outcomes_postings_batches_and_the_pool(api, conn):
    from book import BANK, MERCHANT_M1, WALLET_U1, open_book

    open_book(conn)
    before = scrape(api)
    balance = 'query Balance { account(code: "%s") { balance { posted { amount } } } }' % WALLET_U1
    assert api.data(balance)["account"]["balance"]["posted"]["amount"] == "0"
    assert pay(api, "m1", [(BANK, "DEBIT", 500), (WALLET_U1, "CREDIT", 500)]) == {"__typename": "PostedTransaction"}
    assert pay(api, "m2", [(WALLET_U1, "DEBIT", 900), (MERCHANT_M1, "CREDIT", 900)])["code"] == "INSUFFICIENT_FUNDS"
    assert api.query("{ nope }")["errors"]
    after = scrape(api)

    def moved(metric, **labels):
        key = (metric, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("ledger_graphql_operations_total", type="query", name="Balance", outcome="ok") == 1
    assert moved("ledger_graphql_operations_total", type="mutation", name="Pay", outcome="ok") == 1
    assert moved("ledger_graphql_operations_total", type="mutation", name="Pay", outcome="INSUFFICIENT_FUNDS") == 1
    assert moved("ledger_graphql_operations_total", type="query", name="anonymous", outcome="GRAPHQL_VALIDATION_FAILED") == 1
    assert moved("ledger_graphql_operation_seconds_count", type="mutation") == 2
    assert moved("ledger_transactions_posted_total", replayed="false") == 1
    assert moved("ledger_gather_batch_size_count") == 2  # the refused posting was a batch too
    assert after[("ledger_db_pool_max", ())] == 8
    assert 1 <= after[("ledger_db_pool_size", ())] <= 8
    assert after[("ledger_db_pool_waiting", ())] == 0


def test_request_id_header_and_json_log_lines_carry_it(api):
    import io
    import json
    import logging

    from graphql_api.logs import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("graphql_api.requests")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        mine = api.client.post("/graphql", json={"query": "query Who { trialBalance { balanced } }"},
                               headers={"Authorization": f"Bearer {api.token()}", "X-Request-Id": "lb-42.a"})
        fresh = api.client.post("/graphql", json={"query": "{ trialBalance { balanced } }"},
                                headers={"Authorization": f"Bearer {api.token()}", "X-Request-Id": "not safe!" * 10})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert mine.headers["x-request-id"] == "lb-42.a"  # a short safe token offered is kept
    assert fresh.headers["x-request-id"] != "not safe!" * 10 and len(fresh.headers["x-request-id"]) == 16
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["lb-42.a", fresh.headers["x-request-id"]]
    first = lines[0]
    assert set(first) == {"time", "level", "logger", "message", "request_id", "operation"}
    assert (first["level"], first["logger"], first["operation"]) == ("INFO", "graphql_api.requests", "query Who")
    assert first["message"].startswith("query Who: ok in ")
    assert api.client.get("/livez").headers["x-request-id"]  # every route answers with one
    assert api.client.post("/graphql", json={"query": "{ x }"}).headers["x-request-id"]  # even a 401


def test_operation_series_count_alike_when_their_lookups_are_kept_and_past_the_cache(db_url):
    from graphql_api import metrics as metrics_module
    from graphql_api.context import AppState, Limits

    state = AppState.open(db_url, Limits())
    try:
        metrics = metrics_module.Metrics(state)
        for _ in range(3):
            metrics.observe_operation("query", "Balance", "ok", 0.001)
        metrics.observe_operation("query", "Balance", "NOT_FOUND", 0.001)
        metrics.observe_operation("mutation", "bad name!", "ok", 0.001)
        extra = metrics_module.series_cached_max + 10  # distinct outcomes, past what is kept
        for n in range(extra):
            metrics.observe_operation("query", "Many", f"CODE_{n}", 0.001)
        metrics.observe_operation("query", "Many", "CODE_0", 0.001)
        metrics.observe_operation("query", "Many", f"CODE_{extra - 1}", 0.001)
    finally:
        state.close()

    def count(**labels: str) -> float | None:
        return metrics.registry.get_sample_value("ledger_graphql_operations_total", labels)

    assert count(type="query", name="Balance", outcome="ok") == 3
    assert count(type="query", name="Balance", outcome="NOT_FOUND") == 1
    assert count(type="mutation", name="other", outcome="ok") == 1
    assert count(type="query", name="Many", outcome="CODE_0") == 2
    assert count(type="query", name="Many", outcome=f"CODE_{extra - 1}") == 2  # not kept, still counted
    assert metrics.registry.get_sample_value("ledger_graphql_operation_seconds_count", {"type": "query"}) == 4 + extra + 2


def test_json_log_line_of_text_orjson_refuses_is_still_written():
    import json
    import logging

    from graphql_api.logs import JsonFormatter

    record = logging.LogRecord("graphql_api", logging.INFO, __file__, 1, "odd %s", ("\ud800",), None)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "odd \ud800" and line["level"] == "INFO"


@pytest.mark.timeout(120)
def test_serve_writes_json_log_lines_with_the_request_id(db_url, conn):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from browser import free_port

    from ledger.tokens import create_token

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "ledger_cli.main", "serve", "--port", str(port)],
                              env={**os.environ, "DATABASE_URL": db_url}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/livez", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        request = urllib.request.Request(
            f"{base}/graphql", data=json.dumps({"query": "query Served { trialBalance { balanced } }"}).encode(),
            headers={"Content-Type": "application/json", "X-Request-Id": "served-1",
                     "Authorization": f"Bearer {create_token(conn, 'auditor').token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.headers["X-Request-Id"] == "served-1"
        server.send_signal(signal.SIGTERM)
        errors = server.communicate(timeout=30)[1]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    lines = [json.loads(line) for line in errors.splitlines() if line.strip()]  # every line is JSON
    served = [line for line in lines if line["request_id"] == "served-1"]
    assert [(line["logger"], line["operation"]) for line in served] == [("graphql_api.requests", "query Served")]
