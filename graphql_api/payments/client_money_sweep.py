"""`sweepClientMoney`: the end-of-day sweep against own funds that restores the client-money rule."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import strawberry
from strawberry.types import Info

from graphql_api.context import require_role, run_db
from graphql_api.core.types import Money
from graphql_api.errors import error_result, result_union
from graphql_api.payments.types import POSTERS, BankNotFound, ClientMoney, money, optional_id
from ledger.errors import LedgerError
from ledger.products import payments

__all__ = ["SweepClientMoneyInput", "ClientMoneySwept", "SweepClientMoneyResult", "ClientMoneySweepMutation"]


@strawberry.input
class SweepClientMoneyInput:
    idempotency_key: str
    bank: str
    date: dt.date = strawberry.field(description="The business day the sweep closes.")


@strawberry.type(description="Own funds moved into (positive) or out of (negative) the bank's reserve; no "
                             "transaction when the rule already held. `clientMoney` is as of the sweep.")
class ClientMoneySwept:
    transaction_id: strawberry.ID | None
    replayed: bool
    bank: str
    date: dt.date
    amount: Money
    effective_at: dt.datetime
    client_money: ClientMoney


SweepClientMoneyResult = result_union("SweepClientMoneyResult", ClientMoneySwept, BankNotFound)


def _sweep(conn: psycopg.Connection[Any], key: str, bank: str, day: dt.date
           ) -> tuple[payments.Sweep, payments.ClientMoney]:
    done = payments.sweep_client_money(conn, idempotency_key=key, bank=bank, day=day)
    return done, payments.client_money(conn, as_of=done.effective_at)


@strawberry.type
class ClientMoneySweepMutation:
    @strawberry.mutation(description="End-of-day sweep: make the client-money reserves equal client liabilities "
                                     "by moving the difference between own funds and the bank's reserve.")
    async def sweep_client_money(self, info: Info, input: SweepClientMoneyInput) -> SweepClientMoneyResult:
        try:
            require_role(info, *POSTERS)
            done, after = await run_db(info, _sweep, input.idempotency_key, input.bank, input.date)
            return ClientMoneySwept(transaction_id=optional_id(done.transaction_id), replayed=done.replayed,
                                    bank=done.bank, date=done.date, amount=money(done.amount_fen),
                                    effective_at=done.effective_at, client_money=ClientMoney.of(after))
        except LedgerError as exc:
            return error_result(exc, SweepClientMoneyResult)
