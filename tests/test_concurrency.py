"""Several processes post random transfers (and retry the same keys) among accounts with limits.

Afterwards: money is conserved per currency, no limit was crossed, the projection equals the
entries, and no deadlock or serialization error ever reached a caller.
"""

from __future__ import annotations

import multiprocessing
import random

import psycopg

from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.audit import verify
from ledger.errors import InsufficientFunds, LimitExceeded
from ledger.posting import Leg, Transfer, post

WALLETS = 12
FUNDING = 1_000
WORKERS = 4
ROUNDS = 120
CAP = 2_500  # every wallet may hold at most this much


def _wallet(i: int) -> str:
    return f"liabilities:wallets:W{i}"


def _worker(db_url: str, worker: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    outcome: dict[str, object] = {"posted": 0, "refused": 0, "replayed": 0, "unexpected": []}
    with psycopg.connect(db_url, autocommit=True) as conn:
        for round_no in range(ROUNDS):
            batch = []
            for leg_no in range(rng.choice([1, 1, 1, 3])):
                source, target = rng.sample(range(WALLETS), 2)
                amount = rng.randint(1, 400)
                batch.append(Transfer(f"w{worker}-{round_no}-{leg_no}", "transfer.p2p",
                                      [Leg(_wallet(source), Side.DEBIT, amount), Leg(_wallet(target), Side.CREDIT, amount)]))
            attempts = 2 if rng.random() < 0.25 else 1  # a client retrying after a lost reply
            for _ in range(attempts):
                try:
                    results = post(conn, batch)
                except (InsufficientFunds, LimitExceeded):
                    outcome["refused"] = int(outcome["refused"]) + 1  # type: ignore[call-overload]
                    break
                except Exception as exc:  # noqa: BLE001 - anything else is a failure the test reports
                    outcome["unexpected"].append(repr(exc))  # type: ignore[union-attr]
                    break
                if all(r.replayed for r in results):
                    outcome["replayed"] = int(outcome["replayed"]) + 1  # type: ignore[call-overload]
                else:
                    outcome["posted"] = int(outcome["posted"]) + 1  # type: ignore[call-overload]
    return outcome


def test_random_concurrent_transfers_keep_every_invariant(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        create_account(conn, NewAccount("equity:capital", "Capital", AccountType.EQUITY, "CNY"))
        for i in range(WALLETS):
            create_account(conn, NewAccount(_wallet(i), f"W{i}", AccountType.LIABILITY, "CNY",
                                            min_balance=0, max_balance=CAP))
        post(conn, [Transfer(f"fund-{i}", "wallet.fund", [Leg("equity:capital", Side.DEBIT, FUNDING),
                                                          Leg(_wallet(i), Side.CREDIT, FUNDING)])
                    for i in range(WALLETS)])

    context = multiprocessing.get_context("spawn")
    with context.Pool(WORKERS) as pool:
        outcomes = pool.starmap(_worker, [(db_url, w, 1000 + w) for w in range(WORKERS)])

    assert [o["unexpected"] for o in outcomes] == [[]] * WORKERS
    assert sum(int(o["posted"]) for o in outcomes) > 0 and sum(int(o["refused"]) for o in outcomes) > 0
    assert sum(int(o["replayed"]) for o in outcomes) > 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        balances = conn.execute(
            """select b.posted_credits - b.posted_debits from ledger.balances b
                 join ledger.accounts a on a.id = b.account_id where a.code like 'liabilities:wallets:%'""").fetchall()
        assert sum(b[0] for b in balances) == WALLETS * FUNDING
        assert all(0 <= b[0] <= CAP for b in balances)
        lowest = conn.execute(
            """select min(posted_balance_after), max(posted_balance_after) from ledger.entries e
                 join ledger.accounts a on a.id = e.account_id where a.code like 'liabilities:wallets:%'""").fetchone()
        assert lowest[0] >= 0 and lowest[1] <= CAP
        report = verify(conn, progress=None)
        assert report.ok, report.problems
