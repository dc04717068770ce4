"""The delivery worker: a thread that runs delivery passes (ledger/webhooks/delivery.py) for as
long as the process lives, in one process per database at a time.

Every server process may start one (`ledger-core serve` does, in each of its workers; so does
`ledger-core webhooks deliver`); only the one holding a PostgreSQL session advisory lock
delivers, the others wait to take over. The lock lives on the connection the worker delivers
with, so a worker that loses its connection (the database restarted, the network broke) stops
delivering at once, and whichever worker next gets the lock resumes from the stored positions.
A lost connection is retried with a delay that doubles up to `reconnect_delay_max_s`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg

from ledger.webhooks.delivery import deliver_pass
from ledger.webhooks.settings import WebhookSettings

__all__ = ["DeliveryWorker", "LOCK_KEY", "SESSION_OPTIONS"]

log = logging.getLogger("ledger.webhooks")
# pg_try_advisory_lock(classid, objid): "LDGR", 1 (the webhook delivery worker).
LOCK_KEY = (0x4C444752, 1)
reconnect_delay_min_s = 0.2
reconnect_delay_max_s = 10.0
lock_retry_s = 2.0
statement_timeout_ms = 30_000
# Each attempt is one statement, its own database transaction (ledger/webhooks/delivery.py).
# Not waiting for its WAL flush triples delivery where a flush costs milliseconds; what a
# database crash (not a clean restart) can lose is the last fraction of a second of attempts:
# their log rows, and position moves whose events are then sent again, which at-least-once allows.
SESSION_OPTIONS = f"-c statement_timeout={statement_timeout_ms} -c synchronous_commit=off"


class DeliveryWorker:
    def __init__(self, database_url: str, settings: WebhookSettings) -> None:
        self._url = database_url
        self._settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.holds_lock = threading.Event()  # set while this worker is the one delivering
        self.passes = 0                      # delivery passes finished (for tests and logs)

    def start(self) -> DeliveryWorker:
        self._thread = threading.Thread(target=self.run, name="webhook-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float | None = None) -> None:
        """Ask the worker to end and wait for it (at most one request's timeout past a pass)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def run(self) -> None:
        delay_s = reconnect_delay_min_s
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5,
                                     options=SESSION_OPTIONS) as conn:
                    delay_s = reconnect_delay_min_s
                    self._serve(conn)
            except psycopg.Error as exc:
                log.warning("webhook delivery: database error, retrying in %.1f s: %s", delay_s, exc)
            except Exception:  # never let the thread die: log, wait, start over
                log.exception("webhook delivery: unexpected error, retrying in %.1f s", delay_s)
            finally:
                self.holds_lock.clear()
            self._stop.wait(delay_s)
            delay_s = min(reconnect_delay_max_s, delay_s * 2)

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        while not self._stop.is_set():
            row = conn.execute("select pg_try_advisory_lock(%s, %s)", LOCK_KEY).fetchone()
            if row is not None and row[0]:
                break
            self._stop.wait(lock_retry_s)
        self.holds_lock.set()
        while not self._stop.is_set():
            delivered = deliver_pass(conn, self._settings)
            self.passes += 1
            if delivered == 0:
                self._stop.wait(self._settings.poll_ms / 1000)
