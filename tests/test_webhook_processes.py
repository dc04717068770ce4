"""Webhook delivery as deployed: `serve --workers 2` runs a delivery worker in each server
process and exactly one of them delivers; `webhooks deliver` delivers on its own and stops on
SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from book import WALLET_U1, open_book, top_up
from test_serve import CLI, free_port, request
from webhook_receiver import Receiver

from ledger.webhooks.endpoints import create_endpoint
from ledger.webhooks.worker import LOCK_KEY

SECRET = "process-test-secret-0123"
ENV = {"LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1", "LEDGER_WEBHOOK_POLL_MS": "20"}


def lock_holders(conn):
    return conn.execute("select count(*) from pg_locks where locktype = 'advisory' and granted "
                        "and classid = %s and objid = %s and database = (select oid from pg_database "
                        "where datname = current_database())", LOCK_KEY).fetchone()[0]


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def test_serve_with_two_workers_delivers_each_transaction_once(db_url, conn):
    open_book(conn)
    receiver = Receiver(SECRET)
    create_endpoint(conn, receiver.url, ["transaction.posted"], SECRET, created_by="test", allow_private_targets=True)
    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--port", str(port), "--workers", "2"],
                              env={**os.environ, **ENV, "DATABASE_URL": db_url},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                if request(port)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        ids = [top_up(conn, WALLET_U1, n, f"w{n}") for n in range(1, 9)]
        got = receiver.wait_for(len(ids))
        time.sleep(0.3)  # room for a second delivery, were there one
        assert [r.event["data"]["id"] for r in receiver.delivered()] == ids, "once each, in order"
        assert all(r.signed for r in got)
        assert lock_holders(conn) == 1
    finally:
        stop(server)
        receiver.stop()
    assert lock_holders(conn) == 0, "the lock goes with the server"


def test_the_deliver_command_delivers_and_stops_on_sigterm(db_url, conn, tmp_path):
    open_book(conn)
    receiver = Receiver(SECRET)
    create_endpoint(conn, receiver.url, ["transaction.posted"], SECRET, created_by="test", allow_private_targets=True)
    tid = top_up(conn, WALLET_U1, 5, "one")
    output = tmp_path / "stdout"
    with output.open("w") as sink:
        worker = subprocess.Popen([*CLI, "webhooks", "deliver"], env={**os.environ, **ENV, "DATABASE_URL": db_url},
                                  stdout=sink, stderr=subprocess.DEVNULL)
    try:
        got = receiver.wait_for(1)
    finally:
        code = stop(worker)
        receiver.stop()
    assert [r.event["data"]["id"] for r in got] == [tid]
    assert code == 0
    assert output.read_text().splitlines()[-1] == "stopped"


def test_a_bad_setting_stops_the_deliver_command_naming_it(db_url):
    done = subprocess.run([*CLI, "webhooks", "deliver"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DATABASE_URL": db_url, "LEDGER_WEBHOOK_RETRY_BASE_MS": "soon"})
    assert done.returncode == 2
    assert "LEDGER_WEBHOOK_RETRY_BASE_MS" in done.stderr
