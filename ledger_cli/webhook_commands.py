"""Commands: webhooks deliver (the delivery worker on its own, in the foreground)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from ledger.migrate import migrate
from ledger.webhooks.settings import WebhookSettings
from ledger.webhooks.worker import DeliveryWorker
from ledger_cli.options import add_database_options, connection_url

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("webhooks", help="webhook delivery")
    actions = parser.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    deliver = actions.add_parser("deliver", help="deliver webhooks until stopped (for servers run with "
                                                 "--no-webhooks; one process delivers at a time)")
    add_database_options(deliver)
    deliver.set_defaults(run=_deliver)


def _deliver(args: argparse.Namespace) -> int:
    url = connection_url(args)
    settings = WebhookSettings.from_env()
    migrate(url)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    worker = DeliveryWorker(url, settings).start()
    print("delivering webhooks (when no other process is); Ctrl-C stops", flush=True)
    while not stopped.wait(1):
        pass
    worker.stop()
    print("stopped", flush=True)
    return 0
