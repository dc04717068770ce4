"""Webhook delivery against a real receiver on a local socket: it fails (500s, a hang past the
timeout, a refused connection), restarts, and in the end has every transaction, each signed as
the docs say, in the journal feed's order, at least once. The worker resumes from its stored
position after a restart, survives the database restarting under it (sending again an event
whose record the restart cut off), never skips a transaction that commits late, and only one of
several workers delivers."""

from __future__ import annotations

import time

import psycopg
import pytest
from book import BANK, MERCHANT_M1, WALLET_U1, WALLET_U2, open_book, top_up
from psycopg.conninfo import make_conninfo
from starlette.testclient import TestClient
from test_database_restart import terminate_backends
from webhook_receiver import Receiver

from graphql_api.app import create_app
from ledger.accounts import Side
from ledger.errors import ValidationError
from ledger.feed import journal_page
from ledger.posting import Leg, Transfer, post_one
from ledger.webhooks.delivery import deliver_pass, event_id
from ledger.webhooks.endpoints import EndpointStatus, create_endpoint, set_status
from ledger.webhooks.settings import WebhookSettings
from ledger.webhooks.signing import verify
from ledger.webhooks.worker import DeliveryWorker

SECRET = "s3cret-for-the-test-receiver"
FAST = {"LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1", "LEDGER_WEBHOOK_TIMEOUT_MS": "300",
        "LEDGER_WEBHOOK_RETRY_BASE_MS": "5", "LEDGER_WEBHOOK_RETRY_MAX_MS": "40", "LEDGER_WEBHOOK_POLL_MS": "20"}
CREATE = """mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) {
  __typename ... on WebhookEndpoint { id url events status } ... on LedgerError { code message } } }"""
LOG = """query($id: ID!, $after: String) { webhookDeliveries(endpointId: $id, first: 50, after: $after) {
  edges { node { eventId transactionId attempt statusCode error delivered nextAttemptAt durationMs } }
  pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture
def fast(monkeypatch):
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    return WebhookSettings.from_env()


@pytest.fixture
def receiver():
    found = Receiver(SECRET)
    yield found
    found.stop()


def feed_ids(conn):
    return [item.transaction.id for item in journal_page(conn, first=1000).items]


def first_receipts(received):
    """Transaction ids in the order each was first delivered."""
    seen: list[int] = []
    for r in received:
        tid = r.event["data"]["id"]
        if tid not in seen:
            seen.append(tid)
    return seen


def whole_log(api, endpoint_id):
    rows, after = [], None
    while True:
        page = api.data(LOG, {"id": endpoint_id, "after": after})["webhookDeliveries"]
        rows += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return rows
        after = page["pageInfo"]["endCursor"]


def make_endpoint(api, receiver):
    created = api.data(CREATE, {"input": {"url": receiver.url, "events": ["transaction.posted"],
                                          "secret": SECRET}})["createWebhookEndpoint"]
    assert created["__typename"] == "WebhookEndpoint", created
    return created["id"]


def test_a_failing_receiver_gets_every_transaction_signed_and_in_order(api, conn, fast, receiver):
    open_book(conn)
    top_up(conn, WALLET_U1, 1, "before the endpoint")  # made before: not sent
    endpoint_id = make_endpoint(api, receiver)
    receiver.fail_next(500, 503, "hang")
    ids = [top_up(conn, WALLET_U1, n, f"t{n}") for n in range(1, 7)]
    with TestClient(create_app(api.db_url, deliver_webhooks=True)):
        got = receiver.wait_for(2)
        assert first_receipts(got) == ids[:len(first_receipts(got))], "in order, from the first"
        receiver.stop()  # connections refused while it is down
        post_one(conn, Transfer("while down", "wallet.top_up", [Leg(BANK, Side.DEBIT, 70),
                                                                  Leg(WALLET_U1, Side.CREDIT, 70)]))
        deadline = time.monotonic() + 30
        while not any((r["error"] or "").startswith("ConnectionRefusedError") for r in whole_log(api, endpoint_id)):
            assert time.monotonic() < deadline, "no refused connection was logged"
            time.sleep(0.05)
        receiver.start()
        expected = [i for i in feed_ids(conn) if i > ids[0] - 1]
        got = receiver.wait_for(len(expected))
    assert first_receipts(got) == expected, "each transaction arrives, in the feed's order"
    for r in receiver.received:
        assert r.signed, r.headers
        assert r.headers["ledger-webhook-id"] == event_id(r.event["data"]["id"])
        assert r.headers["ledger-webhook-event"] == "transaction.posted"
        assert r.headers["content-type"] == "application/json"
    first = got[0].event
    assert first["type"] == "transaction.posted" and first["data"]["idempotencyKey"] == "t1"
    assert {(e["account"], e["side"], e["amountMinor"]) for e in first["data"]["entries"]} == {
        (BANK, "debit", 1), (WALLET_U1, "credit", 1)}
    log = whole_log(api, endpoint_id)
    failures = [row for row in log if not row["delivered"]]
    assert {row["statusCode"] for row in failures} >= {500, 503}
    assert any(row["error"] == "timed out after 300 ms" for row in failures)
    assert all(row["nextAttemptAt"] is not None and row["error"] for row in failures)
    first_event = [row for row in reversed(log) if row["transactionId"] == str(ids[0])]
    assert [row["attempt"] for row in first_event] == [1, 2, 3, 4], "three failures, then the success"
    assert [row["delivered"] for row in first_event] == [False, False, False, True]
    endpoint = api.data("{ webhookEndpoints { id failedAttempts nextAttemptAt } }")["webhookEndpoints"]
    assert endpoint == [{"id": endpoint_id, "failedAttempts": 0, "nextAttemptAt": None}]


def test_a_signature_is_refused_when_the_body_or_time_differs():
    from ledger.webhooks.signing import signature_header

    body = b'{"id":"transaction.posted:1"}'
    header = signature_header(SECRET, 1_700_000_000, body)
    assert verify(SECRET, header, body, now_s=1_700_000_100)
    assert not verify(SECRET, header, body + b" ", now_s=1_700_000_100)
    assert not verify("another-secret-entirely", header, body, now_s=1_700_000_100)
    assert not verify(SECRET, header, body, now_s=1_700_000_000 + 301), "outside the replay window"
    assert not verify(SECRET, header.replace("t=1700000000", "t=1700000050"), body, now_s=1_700_000_050)
    assert not verify(SECRET, "v1=" + header.split("v1=")[1], body, now_s=1_700_000_000)


def test_a_restart_resumes_where_delivery_stopped_without_resending(conn, fast, receiver):
    open_book(conn)
    endpoint = create_endpoint(conn, receiver.url, ["transaction.posted"], SECRET, created_by="test",
                               allow_private_targets=True)
    first = [top_up(conn, WALLET_U1, n, f"a{n}") for n in range(1, 4)]
    worker = DeliveryWorker(conn.info.dsn, fast).start()
    receiver.wait_for(3)
    worker.stop()
    later = [top_up(conn, WALLET_U1, n, f"b{n}") for n in range(1, 4)]
    assert len(receiver.delivered()) == 3
    worker = DeliveryWorker(conn.info.dsn, fast).start()
    got = receiver.wait_for(6)
    worker.stop()
    assert [r.event["data"]["id"] for r in got] == first + later, "each exactly once: the receiver never failed"
    position = conn.execute("select after_transaction_id, attempts from ledger.webhook_positions "
                            "where endpoint_id = %s", (endpoint.id,)).fetchone()
    assert position == (later[-1], 0)


def test_the_worker_survives_the_database_restarting_under_it(conn, db_url, fast, receiver):
    open_book(conn)
    create_endpoint(conn, receiver.url, ["transaction.posted"], SECRET, created_by="test", allow_private_targets=True)
    worker = DeliveryWorker(db_url, fast).start()
    try:
        before = top_up(conn, WALLET_U1, 5, "before")
        # Generous guards for a loaded machine or a cluster. The restart may come between the
        # request for `before` and the commit of its record: then `before` is sent again (at least
        # once), so the guard waits for the transactions, not for a count of requests.
        receiver.wait_for_transactions([before], timeout_s=60)
        assert worker.holds_lock.wait(30)
        assert terminate_backends(db_url) >= 1  # the worker's connection, and ours
        with psycopg.connect(db_url, autocommit=True) as fresh:
            after = top_up(fresh, WALLET_U1, 6, "after")
        got = receiver.wait_for_transactions([before, after], timeout_s=90)
    finally:
        worker.stop()
    assert first_receipts(got) == [before, after]


def test_a_restart_that_cuts_off_an_attempts_record_sends_that_event_again(conn, db_url, fast, receiver):
    """The moment the restart test meets by chance, made on purpose: `before` has been answered
    but the statement that records it waits (behind a lock held here) when the restart ends the
    worker's session. Nothing recorded it, so the worker sends it again under the same event id
    (at least once), and then `after`, in order."""
    open_book(conn)
    create_endpoint(conn, receiver.url, ["transaction.posted"], SECRET, created_by="test", allow_private_targets=True)
    # A table lock takes no transaction id, so the journal horizon does not wait for it; the
    # record (an insert into the log) does.
    locker = psycopg.connect(db_url)
    locker.execute("lock table ledger.webhook_deliveries in share mode")
    worker = DeliveryWorker(db_url, fast).start()
    try:
        before = top_up(conn, WALLET_U1, 5, "before")
        receiver.wait_for_transactions([before], timeout_s=60)
        name = conn.info.dbname
        with psycopg.connect(make_conninfo(db_url, dbname="postgres"), autocommit=True) as admin:
            deadline = time.monotonic() + 60
            while not (waiting := admin.execute(
                    "select pid from pg_stat_activity where datname = %s and wait_event_type = 'Lock' "
                    "and query like %s", (name, "%webhook_deliveries%")).fetchall()):
                assert time.monotonic() < deadline, "the record did not wait for the lock"
                time.sleep(0.02)
            # The worker's session ends first: were the lock released first, the record would commit.
            admin.execute("select pg_terminate_backend(%s::integer, 10000)", waiting[0])
        terminate_backends(db_url)  # the rest of the restart: the lock holder, and our session
        with psycopg.connect(db_url, autocommit=True) as fresh:
            after = top_up(fresh, WALLET_U1, 6, "after")
        got = receiver.wait_for_transactions([before, after], timeout_s=90)
    finally:
        worker.stop()
        locker.close()
    # Sent again at least once (the restart may also end the worker's next session), then `after`.
    assert first_receipts(got) == [before, after]
    again = [r for r in got if r.event["data"]["id"] == before]
    assert len(again) >= 2 and {r.headers["ledger-webhook-id"] for r in again} == {event_id(before)}


def test_a_transaction_that_commits_late_is_not_skipped(conn, db_url, fast, receiver):
    open_book(conn)
    create_endpoint(conn, receiver.url, ["transaction.posted"], SECRET, created_by="test", allow_private_targets=True)
    with psycopg.connect(db_url) as slow:  # a transaction written first, committed last
        slow.execute("select 1")  # opens the transaction the posting then runs inside
        early = top_up(slow, WALLET_U1, 10, "early")
        late_committer = slow
        later = post_one(conn, Transfer("later", "merchant.payout", [  # other accounts; committed first
            Leg(MERCHANT_M1, Side.DEBIT, 20), Leg(WALLET_U2, Side.CREDIT, 20)])).transaction_id
        assert later > early
        assert deliver_pass(conn, fast) == 0, "nothing may be sent past a transaction still open"
        late_committer.commit()
    while deliver_pass(conn, fast):
        pass
    assert first_receipts(receiver.delivered()) == [early, later]


def test_only_one_worker_delivers_and_the_other_takes_over(conn, db_url, fast, receiver):
    open_book(conn)
    create_endpoint(conn, receiver.url, ["transaction.posted"], SECRET, created_by="test", allow_private_targets=True)
    one = DeliveryWorker(db_url, fast).start()
    assert one.holds_lock.wait(10)
    two = DeliveryWorker(db_url, fast).start()
    try:
        ids = [top_up(conn, WALLET_U1, n, f"k{n}") for n in range(1, 6)]
        receiver.wait_for(5)
        assert not two.holds_lock.is_set()
        one.stop()
        assert two.holds_lock.wait(10), "the second takes over once the first has gone"
        ids.append(top_up(conn, WALLET_U1, 9, "k9"))
        got = receiver.wait_for(6)
    finally:
        one.stop()
        two.stop()
    assert [r.event["data"]["id"] for r in got] == ids


def test_disabled_endpoints_wait_and_deleted_ones_hear_nothing(conn, fast, receiver):
    open_book(conn)
    endpoint = create_endpoint(conn, receiver.url, ["transaction.posted"], SECRET, created_by="test",
                               allow_private_targets=True)
    set_status(conn, endpoint.id, EndpointStatus.DISABLED)
    first = top_up(conn, WALLET_U1, 1, "while disabled")
    assert deliver_pass(conn, fast) == 0 and receiver.received == []
    set_status(conn, endpoint.id, EndpointStatus.ACTIVE)
    assert deliver_pass(conn, fast) == 1, "an enabled endpoint resumes where it stopped"
    set_status(conn, endpoint.id, EndpointStatus.DELETED)
    top_up(conn, WALLET_U1, 2, "after deletion")
    assert deliver_pass(conn, fast) == 0
    assert [r.event["data"]["id"] for r in receiver.received] == [first]


def test_a_private_address_is_refused_at_delivery_when_the_setting_is_off(conn, fast, receiver):
    """An endpoint made while private targets were allowed gets nothing once they are not."""
    open_book(conn)
    create_endpoint(conn, receiver.url, ["transaction.posted"], SECRET, created_by="test", allow_private_targets=True)
    top_up(conn, WALLET_U1, 1, "one")
    strict = WebhookSettings(retry_base_ms=1, retry_max_ms=1)
    assert deliver_pass(conn, strict) == 0
    assert receiver.received == []
    error = conn.execute("select error from ledger.webhook_deliveries").fetchone()[0]
    assert error.startswith("refused: url is not a public address")


def test_the_application_role_may_do_all_that_delivery_needs(conn, fast, receiver):
    open_book(conn)
    conn.execute("set role ledger_app")
    create_endpoint(conn, receiver.url, ["transaction.posted"], SECRET, created_by="test", allow_private_targets=True)
    conn.execute("reset role")
    tid = top_up(conn, WALLET_U1, 3, "one")
    conn.execute("set role ledger_app")
    receiver.fail_next(500)
    assert deliver_pass(conn, WebhookSettings(allow_private_targets=True, retry_base_ms=1, retry_max_ms=1)) == 0
    time.sleep(0.01)
    assert deliver_pass(conn, WebhookSettings(allow_private_targets=True)) == 1
    conn.execute("reset role")
    assert first_receipts(receiver.delivered()) == [tid]


def test_retry_delays_double_up_to_the_maximum():
    settings = WebhookSettings(retry_base_ms=1_000, retry_max_ms=600_000)
    assert [settings.retry_delay_ms(n) for n in (1, 2, 3, 4, 10, 11, 1000)] == [
        1_000, 2_000, 4_000, 8_000, 512_000, 600_000, 600_000]
    for name, value in (("LEDGER_WEBHOOK_TIMEOUT_MS", "0"), ("LEDGER_WEBHOOK_RETRY_MAX_MS", "-5"),
                        ("LEDGER_WEBHOOK_POLL_MS", "1e3"), ("LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "perhaps")):
        with pytest.raises(ValidationError) as refused:
            WebhookSettings.from_env({name: value})
        assert refused.value.field == name


def test_the_timeout_bounds_the_whole_request_not_each_read(receiver):
    """A receiver answering a byte at a time, each byte well within the timeout, is cut off at
    the timeout: without the deadline it would be read to the end and count as delivered."""
    from ledger.webhooks.sending import post
    from ledger.webhooks.targets import check_url

    receiver.hang_s = 2.0
    receiver.fail_next("trickle", 204)
    target = check_url(receiver.url, allow_private_targets=True)
    slow = post(target, b"{}", {}, timeout_ms=300, allow_private_targets=True)
    assert (slow.delivered, slow.status_code, slow.error) == (False, None, "timed out after 300 ms")
    quick = post(target, b"{}", {}, timeout_ms=300, allow_private_targets=True)
    assert (quick.delivered, quick.status_code, quick.error) == (True, 204, None)


def test_endpoints_take_turns_a_page_each(conn):
    """A backlog on one endpoint does not keep the next one waiting until it is worked off."""
    open_book(conn)
    first, second = Receiver(SECRET), Receiver(SECRET)
    try:
        for receiver in (first, second):
            create_endpoint(conn, receiver.url, ["transaction.posted"], SECRET, created_by="test",
                            allow_private_targets=True)
        ids = [top_up(conn, WALLET_U1, n, f"p{n}") for n in range(1, 6)]
        settings = WebhookSettings(allow_private_targets=True, batch_size=2)
        assert deliver_pass(conn, settings) == 4
        assert [len(first.delivered()), len(second.delivered())] == [2, 2]
        while deliver_pass(conn, settings):
            pass
        for receiver in (first, second):
            assert [r.event["data"]["id"] for r in receiver.delivered()] == ids
    finally:
        first.stop()
        second.stop()
