"""Repaying a loan, paying it off early, and recovering a written-off one.

A repayment comes from the customer's wallet and is allocated penalties (late fees) -> fees ->
interest -> principal. The fee and interest receivables only ever hold what was billed, i.e.
what fell due, so paying each component's balance pays its oldest due amounts first; principal
beyond what is due is an early repayment of the next instalments. A payment above everything
owed is refused. Paying off closes the loan: it also charges what fell due but was not billed
yet and, per the product setting `payoff_remaining_fees`, the fees of the instalments to come
(their interest is never charged: no money is lent for those periods).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg

from ledger import calendar
from ledger.accounts import Side
from ledger.database_transaction import database_transaction
from ledger.errors import IdempotencyConflict, ValidationError
from ledger.money import parse_amount
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.credit import (
    FEE_INCOME,
    INTEREST_INCOME,
    LoanClosed,
    LoanNotWrittenOff,
    Overpayment,
    allowance_account,
    fees_account,
    get_loan,
    interest_account,
    late_fees_account,
    load_settings,
    lock_loan,
    principal_account,
    record_steps,
)

__all__ = ["Allocation", "Repayment", "PayoffQuote", "QuoteChanged", "repay_loan", "payoff_quote", "pay_off_loan",
           "recover_loan", "outstanding", "bill_key"]


class QuoteChanged(Overpayment):
    """The payoff amount changed since it was quoted (a day passed, a fee was billed)."""

    code = "QUOTE_CHANGED"


@dataclass(frozen=True)
class Allocation:
    """Amounts per component, in allocation order."""

    late_fees_fen: int = 0
    fees_fen: int = 0
    interest_fen: int = 0
    principal_fen: int = 0

    @property
    def total_fen(self) -> int:
        return self.late_fees_fen + self.fees_fen + self.interest_fen + self.principal_fen

    def as_dict(self) -> dict[str, int]:
        return {"late_fees_fen": self.late_fees_fen, "fees_fen": self.fees_fen,
                "interest_fen": self.interest_fen, "principal_fen": self.principal_fen}


@dataclass(frozen=True)
class Repayment:
    loan_id: str
    transaction_id: int
    amount_fen: int
    allocation: Allocation
    replayed: bool = False


@dataclass(frozen=True)
class PayoffQuote:
    loan_id: str
    as_of: date
    owed: Allocation                 # billed and outstanding now
    unbilled_due_fees_fen: int       # fell due, not billed yet by the daily job
    unbilled_due_interest_fen: int
    remaining_fees_fen: int          # fees of instalments to come, per the product setting

    @property
    def total_fen(self) -> int:
        return (self.owed.total_fen + self.unbilled_due_fees_fen + self.unbilled_due_interest_fen
                + self.remaining_fees_fen)


def bill_key(loan_id: str, plan_no: int, number: int) -> str:
    """Idempotency key of an instalment's billing: once per instalment, whichever day bills it."""
    return f"credit:bill:{loan_id}:{plan_no}:{number}"


def outstanding(conn: psycopg.Connection[Any], loan_id: str) -> Allocation:
    """What the loan's receivables hold now (posted), per component."""
    row = conn.execute(
        # The four balances by one join on the account key, not a subquery each: on a Citus
        # cluster (docs/scale-out.md) a subquery over the distributed balances from the loans (a
        # reference table) cannot be planned. One index probe per account either way.
        """select sum(b.posted_debits - b.posted_credits) filter (where b.account_id = l.late_fees_account_id),
                  sum(b.posted_debits - b.posted_credits) filter (where b.account_id = l.fees_account_id),
                  sum(b.posted_debits - b.posted_credits) filter (where b.account_id = l.interest_account_id),
                  sum(b.posted_debits - b.posted_credits) filter (where b.account_id = l.principal_account_id)
             from ledger.loans l
             join ledger.balances b on b.account_id in (l.late_fees_account_id, l.fees_account_id,
                                                        l.interest_account_id, l.principal_account_id)
            where l.id = %s
            group by l.id""", (loan_id,)).fetchone()
    assert row is not None
    return Allocation(*(int(v) for v in row))


def _allocate(amount: int, owed: Allocation) -> Allocation:
    parts = []
    left = amount
    for part in (owed.late_fees_fen, owed.fees_fen, owed.interest_fen, owed.principal_fen):
        take = min(left, part)
        parts.append(take)
        left -= take
    assert left == 0, "allocated more than owed"
    return Allocation(*parts)


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= 200:
        raise ValidationError("idempotencyKey must be 1 to 200 characters", field="idempotencyKey")
    return key


def _moment(value: datetime | None, field: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(f"{field} must be a date and time with a UTC offset", field=field)
    if value > datetime.now(UTC):
        raise ValidationError(f"{field} {value.isoformat()} is in the future", field=field)
    return value


def _request(**fields: Any) -> dict[str, Any]:
    return dict(json.loads(json.dumps({k: v for k, v in fields.items() if v is not None}, default=str)))


def _replayed(conn: psycopg.Connection[Any], key: str, request: dict[str, Any]) -> Repayment | None:
    row = conn.execute("select id, metadata from ledger.transactions where idempotency_key = %s", (key,)).fetchone()
    if row is None:
        return None
    metadata = row[1]
    if metadata.get("request") != request:
        raise IdempotencyConflict(f"idempotency key {key} was already used for a different request",
                                  idempotency_key=key)
    return Repayment(metadata["loan_id"], int(row[0]), int(metadata["amount_fen"]),
                     Allocation(**metadata["allocation"]), replayed=True)


def _closure(conn: psycopg.Connection[Any], loan_id: str) -> str | None:
    row = conn.execute("select reason from ledger.loan_closures where loan_id = %s", (loan_id,)).fetchone()
    return None if row is None else str(row[0])


def _credit_legs(loan_id: str, allocation: Allocation) -> list[Leg]:
    legs = [Leg(late_fees_account(loan_id), Side.CREDIT, allocation.late_fees_fen),
            Leg(fees_account(loan_id), Side.CREDIT, allocation.fees_fen),
            Leg(interest_account(loan_id), Side.CREDIT, allocation.interest_fen),
            Leg(principal_account(loan_id), Side.CREDIT, allocation.principal_fen)]
    return [leg for leg in legs if leg.amount > 0]


def repay_loan(
    conn: psycopg.Connection[Any], idempotency_key: str, loan_id: str, amount_fen: object,
    paid_at: datetime | None = None,
) -> Repayment:
    """Repay from the customer's wallet: Dr wallet / Cr late fees, fees, interest, principal."""
    key = _check_key(idempotency_key)
    amount = parse_amount(amount_fen, field="amount")
    at = _moment(paid_at, "paidAt")
    request = _request(op="repay", loan_id=loan_id, amount=amount,
                       paid_at=paid_at.astimezone(UTC).isoformat() if paid_at else None)
    with database_transaction(conn):
        lock_loan(conn, loan_id)
        replay = _replayed(conn, key, request)
        if replay is not None:
            return replay
        loan = get_loan(conn, loan_id)
        closure = _closure(conn, loan.id)
        if closure is not None:
            raise LoanClosed(f"loan {loan.id} is closed ({closure})", loan_id=loan.id)
        owed = outstanding(conn, loan.id)
        if amount > owed.total_fen:
            raise Overpayment(f"loan {loan.id} owes {owed.total_fen} fen in all; {amount} is more",
                              owed=owed.total_fen, requested=amount)
        allocation = _allocate(amount, owed)
        legs = [Leg(chart.wallet(loan.customer_id), Side.DEBIT, amount), *_credit_legs(loan.id, allocation)]
        posted = post(conn, [Transfer(key, "credit.repay", legs, description=f"repayment of {loan.id}",
                                      effective_at=at, metadata={"loan_id": loan.id, "request": request,
                                                                 "amount_fen": amount,
                                                                 "allocation": allocation.as_dict()})])
        record_steps(conn, [(posted[0].transaction_id, loan.id, "repay", calendar.business_date(at))])
    return Repayment(loan.id, posted[0].transaction_id, amount, allocation)


_UNBILLED_SQL = """
select coalesce(sum(i.fee_fen) filter (where i.due_date <= %(on)s), 0),
       coalesce(sum(i.interest_fen) filter (where i.due_date <= %(on)s), 0),
       coalesce(sum(i.fee_fen) filter (where i.due_date > %(on)s), 0)
  from ledger.loan_instalments i
 where i.loan_id = %(loan)s
   and i.plan_no = (select max(p.plan_no) from ledger.loan_plans p where p.loan_id = i.loan_id)
   and not exists (select 1 from ledger.transactions t
                    where t.idempotency_key = 'credit:bill:' || i.loan_id || ':' || i.plan_no || ':' || i.number)
"""


def payoff_quote(conn: psycopg.Connection[Any], loan_id: str, on: date | None = None) -> PayoffQuote:
    """What paying the loan off on `on` (today by default) costs, per component."""
    loan = get_loan(conn, loan_id)
    on = on or calendar.today()
    if _closure(conn, loan.id) is not None:
        raise LoanClosed(f"loan {loan.id} is closed ({_closure(conn, loan.id)})", loan_id=loan.id)
    row = conn.execute(_UNBILLED_SQL, {"on": on, "loan": loan.id}).fetchone()
    assert row is not None
    remaining = int(row[2]) if load_settings(conn, on).payoff_remaining_fees == "all" else 0
    return PayoffQuote(loan.id, on, outstanding(conn, loan.id), int(row[0]), int(row[1]), remaining)


def pay_off_loan(
    conn: psycopg.Connection[Any], idempotency_key: str, loan_id: str, expected_total_fen: object = None,
    paid_at: datetime | None = None,
) -> Repayment:
    """Pay everything the quote says from the wallet, in one transaction, and close the loan."""
    key = _check_key(idempotency_key)
    expected = None if expected_total_fen is None else parse_amount(expected_total_fen, field="expectedAmount")
    at = _moment(paid_at, "paidAt")
    request = _request(op="payoff", loan_id=loan_id, expected=expected,
                       paid_at=paid_at.astimezone(UTC).isoformat() if paid_at else None)
    with database_transaction(conn):
        lock_loan(conn, loan_id)
        replay = _replayed(conn, key, request)
        if replay is not None:
            return replay
        quote = payoff_quote(conn, loan_id, calendar.business_date(at))
        if expected is not None and expected != quote.total_fen:
            raise QuoteChanged(f"paying off {loan_id} costs {quote.total_fen} fen now, not {expected}",
                               owed=quote.total_fen, requested=expected)
        if quote.total_fen == 0:
            raise ValidationError(f"loan {loan_id} owes nothing to pay off", field="loanId")
        posted = post(conn, [_payoff_transfer(conn, key, quote, request, at)])
        transaction_id = posted[0].transaction_id
        record_steps(conn, [(transaction_id, loan_id, "payoff", calendar.business_date(at))])
        conn.execute("""insert into ledger.loan_closures (loan_id, reason, business_date, transaction_id)
                        values (%s, 'paid_off', %s, %s)""", (loan_id, calendar.business_date(at), transaction_id))
    return Repayment(loan_id, transaction_id, quote.total_fen, _payoff_allocation(quote))


def _payoff_allocation(quote: PayoffQuote) -> Allocation:
    owed = quote.owed
    return Allocation(owed.late_fees_fen, owed.fees_fen + quote.unbilled_due_fees_fen + quote.remaining_fees_fen,
                      owed.interest_fen + quote.unbilled_due_interest_fen, owed.principal_fen)


def _payoff_transfer(
    conn: psycopg.Connection[Any], key: str, quote: PayoffQuote, request: dict[str, Any], at: datetime,
) -> Transfer:
    loan = get_loan(conn, quote.loan_id)
    allocation = _payoff_allocation(quote)
    charged_fees = quote.unbilled_due_fees_fen + quote.remaining_fees_fen
    # Fees and interest not billed yet are billed here (Dr receivable / Cr income) and paid in the
    # same transaction, so the receivables keep meaning "billed" and their credits "paid".
    legs = [Leg(chart.wallet(loan.customer_id), Side.DEBIT, quote.total_fen)]
    if charged_fees:
        legs += [Leg(fees_account(loan.id), Side.DEBIT, charged_fees), Leg(FEE_INCOME, Side.CREDIT, charged_fees)]
    if quote.unbilled_due_interest_fen:
        legs += [Leg(interest_account(loan.id), Side.DEBIT, quote.unbilled_due_interest_fen),
                 Leg(INTEREST_INCOME, Side.CREDIT, quote.unbilled_due_interest_fen)]
    legs += _credit_legs(loan.id, allocation)
    return Transfer(key, "credit.payoff", legs, description=f"payoff of {loan.id}", effective_at=at,
                    metadata={"loan_id": loan.id, "request": request, "amount_fen": quote.total_fen,
                              "allocation": allocation.as_dict()})


def recover_loan(
    conn: psycopg.Connection[Any], idempotency_key: str, loan_id: str, amount_fen: object,
    recovered_at: datetime | None = None,
) -> Repayment:
    """Money collected on a written-off loan: Dr wallet / Cr allowance (the domain page's entry).

    The daily job then releases the allowance of a closed loan back to the provision expense.
    """
    key = _check_key(idempotency_key)
    amount = parse_amount(amount_fen, field="amount")
    at = _moment(recovered_at, "recoveredAt")
    request = _request(op="recover", loan_id=loan_id, amount=amount,
                       recovered_at=recovered_at.astimezone(UTC).isoformat() if recovered_at else None)
    with database_transaction(conn):
        lock_loan(conn, loan_id)
        replay = _replayed(conn, key, request)
        if replay is not None:
            return replay
        loan = get_loan(conn, loan_id)
        if _closure(conn, loan.id) != "written_off":
            raise LoanNotWrittenOff(f"loan {loan.id} is not written off; repay it instead", loan_id=loan.id)
        row = conn.execute(
            """select coalesce(sum(e.amount) filter (where s.step = 'write_off' and e.side = 'debit'), 0),
                      coalesce(sum(e.amount) filter (where s.step = 'recover' and e.side = 'credit'), 0)
                 from ledger.loan_steps s
                 join ledger.loans l on l.id = s.loan_id
                 join ledger.entries e on e.transaction_id = s.transaction_id
                                      and e.account_id = l.allowance_account_id
                where s.loan_id = %s""", (loan.id,)).fetchone()
        assert row is not None
        recoverable = int(row[0]) - int(row[1])
        if amount > recoverable:
            raise Overpayment(f"loan {loan.id} has {recoverable} fen written off and not recovered; {amount} is more",
                              owed=recoverable, requested=amount)
        posted = post(conn, [Transfer(key, "credit.recover", [
            Leg(chart.wallet(loan.customer_id), Side.DEBIT, amount), Leg(allowance_account(loan.id), Side.CREDIT, amount)],
            description=f"recovery on written-off {loan.id}", effective_at=at,
            metadata={"loan_id": loan.id, "request": request, "amount_fen": amount,
                      "allocation": Allocation().as_dict()})])
        record_steps(conn, [(posted[0].transaction_id, loan.id, "recover", calendar.business_date(at))])
    return Repayment(loan.id, posted[0].transaction_id, amount, Allocation())
