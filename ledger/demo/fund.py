"""The demo's fund: Yu'ebao with three holders and 90 days of income.

The income figures are the fund's published ones for 2014-01-01..2014-03-31, replayed onto the
last 90 days of the demo history (so they fit the demo customers' wallets); the 7-day yields
the API shows for those days are the ones the fund published for the matching 2014 days.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from ledger import calendar
from ledger.accounts import Side
from ledger.demo.anchor import demo_anchor, history_days
from ledger.posting import Leg, Transfer, post
from ledger.products import chart, fund, fund_income

__all__ = ["DEMO_FUND", "load_fund_demo"]

DEMO_FUND = "YEB"
# Days of the demo history before the fund opens, and what each demo customer moves into it.
_opening_day = 29
_subscriptions_fen = {"U1001": 500_000, "U1002": 2_000_000, "U1003": 80_000}
_redemption = ("U1002", 300_000, 75)  # customer, amount, demo day: a T+0 redemption mid-way
_BANK = "icbc"

# Income per 10,000 units published for 2014-01-01 .. 2014-03-31 (the fund series in tests/data/yuebao_2013_2014.csv).
_FIGURES = (
    "1.7807", "1.8092", "1.7847", "1.7751", "1.7748", "1.774", "1.8086", "1.822", "1.7647", "1.7878",
    "1.7439", "1.7434", "1.7584", "1.7634", "1.7295", "1.723", "1.7139", "1.6772", "1.6767", "1.7235",
    "1.6958", "1.6853", "1.7491", "1.7296", "1.6815", "1.695", "1.6915", "1.7398", "1.6693", "1.6193",
    "1.609", "1.6086", "1.6083", "1.608", "1.6078", "1.6072", "1.6069", "1.7017", "1.6795", "1.6792",
    "1.7004", "1.677", "1.6702", "1.6705", "1.661", "1.6566", "1.6563", "1.6526", "1.6433", "1.6337",
    "1.6358", "1.6282", "1.6247", "1.6238", "1.6323", "1.6039", "1.596", "1.5792", "1.572", "1.5698",
    "1.5695", "1.5559", "1.5429", "1.5411", "1.5259", "1.517", "1.5148", "1.5145", "1.5048", "1.4965",
    "1.4997", "1.4878", "1.4831", "1.4818", "1.4816", "1.4628", "1.4726", "1.4786", "1.4772", "1.4787",
    "1.4638", "1.4636", "1.4542", "1.446", "1.4345", "1.4273", "1.4255", "1.4259", "1.4257", "1.431",
)


def load_fund_demo(conn: psycopg.Connection[Any]) -> None:
    anchor = demo_anchor(conn)
    fund.create_fund(conn, DEMO_FUND, "Yu'ebao money-market fund")
    opening = anchor + timedelta(days=_opening_day, hours=1)
    for customer, amount in _subscriptions_fen.items():
        _top_up(conn, customer, amount, opening)
        fund.subscribe(conn, idempotency_key=f"demo:fund:subscribe:{customer}", customer_id=customer,
                       fund_id=DEMO_FUND, amount_fen=amount, effective_at=opening + timedelta(minutes=10))
    customer, amount, day = _redemption
    fund.redeem(conn, idempotency_key=f"demo:fund:redeem:{customer}", customer_id=customer, fund_id=DEMO_FUND,
                amount_fen=amount, effective_at=anchor + timedelta(days=day, hours=2))
    first_day = calendar.business_date(anchor) + timedelta(days=history_days - len(_FIGURES))
    for offset, figure in enumerate(_FIGURES):
        fund_income.publish_income(conn, DEMO_FUND, first_day + timedelta(days=offset), figure, progress=None)
    fund.settle(conn, idempotency_key="demo:fund:settle", fund_id=DEMO_FUND, bank=_BANK)


def _top_up(conn: psycopg.Connection[Any], customer: str, amount: int, at: datetime) -> None:
    """Money for the subscription, through the bank like any top-up, settled the same day."""
    clearing, reserve, wallet = chart.bank_clearing(_BANK), chart.bank_reserve(_BANK), chart.wallet(customer)
    post(conn, [
        Transfer(f"demo:fund:topup:{customer}", "wallet.top_up",
                 [Leg(clearing, Side.DEBIT, amount), Leg(wallet, Side.CREDIT, amount)],
                 description="Top-up for Yu'ebao", effective_at=at),
        Transfer(f"demo:fund:topup_settled:{customer}", "wallet.top_up_settled",
                 [Leg(reserve, Side.DEBIT, amount), Leg(clearing, Side.CREDIT, amount)],
                 description="ICBC settled the top-up", effective_at=at + timedelta(minutes=5))])
