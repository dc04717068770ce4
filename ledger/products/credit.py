"""Consumer credit: credit lines, purchases on credit, instalment conversion, bank-style loans.

Each loan has its own receivable accounts (principal, instalment fees, interest, late fees) and
its own allowance for credit losses (a contra-asset). What a loan owes, has paid and is overdue
is derived from those accounts and `ledger.loan_steps` (which transaction is which step), never
kept as a counter. The loan's terms and schedule are immutable rows (sql/0050_credit.sql).

Product settings and enumerations live in `credit_settings.py`, errors in `credit_errors.py`
(both re-exported here), repayments, payoff and recovery in `credit_repay.py`, the daily job in
`credit_day.py`, read models in `credit_view.py`. See docs/rules.md, "Consumer credit".
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from ledger import calendar
from ledger.accounts import AccountType, Side, get_account
from ledger.database_transaction import database_transaction
from ledger.errors import AccountNotFound, IdempotencyConflict, ValidationError
from ledger.money import parse_amount
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.credit_errors import (
    ConversionRefused,
    CreditLimitExceeded,
    LoanClosed,
    LoanNotFound,
    LoanNotWrittenOff,
    NoCreditLine,
    Overpayment,
)
from ledger.products.credit_settings import (
    FIELD_NAMES,
    PRODUCT,
    Bucket,
    CreditSettings,
    Method,
    load_settings,
    parse_rate_setting,
    set_settings,
)
from ledger.products.onboarding import NotOnboarded, onboard_customer, parse_party_id
from ledger.products.rounding import parse_rate
from ledger.products.schedules import (
    Instalment,
    add_months,
    annuity_schedule,
    equal_principal_schedule,
    instalment_conversion_schedule,
)

__all__ = [
    "Bucket", "Method", "CreditSettings", "Loan", "CreditLine",
    "LoanNotFound", "NoCreditLine", "CreditLimitExceeded", "Overpayment", "LoanClosed", "LoanNotWrittenOff",
    "ConversionRefused",
    "principal_account", "fees_account", "interest_account", "late_fees_account", "allowance_account",
    "FEE_INCOME", "INTEREST_INCOME", "LATE_FEE_INCOME", "PROVISION_EXPENSE",
    "FIELD_NAMES", "PRODUCT", "load_settings", "set_settings", "open_credit_line", "credit_line", "purchase_on_credit",
    "originate_loan", "convert_to_instalments", "get_loan", "get_loans", "lock_loan", "record_steps",
    "ensure_credit_accounts", "instalments_max", "monthly_rate_max", "monthly_fee_rate_max",
    "purchase_future_max",
]

instalments_max = 36             # conversion into at most this many instalments
loan_months_max = 360            # bank-style loans (schedules.schedule_months_max)
monthly_rate_max = Decimal("0.05")      # 5% a month is already far above any lawful rate
monthly_fee_rate_max = Decimal("0.05")
purchase_future_max = timedelta(minutes=5)   # clock skew allowed on purchasedAt
# Advisory-lock namespaces (first key of the two-key form).
_LOCK_KEY = 7260050
_LOCK_LINE = 7260051
_LOCK_LOAN = 7260052

FEE_INCOME = "revenue:credit:instalment_fees"
INTEREST_INCOME = "revenue:credit:interest"
LATE_FEE_INCOME = "revenue:credit:late_fees"
PROVISION_EXPENSE = "expenses:credit:provisions"
_PLATFORM = {
    FEE_INCOME: ("Instalment-fee income", AccountType.REVENUE),
    INTEREST_INCOME: ("Interest income", AccountType.REVENUE),
    LATE_FEE_INCOME: ("Late-fee income", AccountType.REVENUE),
    PROVISION_EXPENSE: ("Credit-loss provision expense", AccountType.EXPENSE),
}


def principal_account(loan_id: str) -> str:
    return f"assets:loans:principal:{loan_id}"


def fees_account(loan_id: str) -> str:
    return f"assets:loans:fees:{loan_id}"


def interest_account(loan_id: str) -> str:
    return f"assets:loans:interest:{loan_id}"


def late_fees_account(loan_id: str) -> str:
    return f"assets:loans:late_fees:{loan_id}"


def allowance_account(loan_id: str) -> str:
    return f"assets:loans:allowance:{loan_id}"


# Loans ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Loan:
    id: str
    seq: int
    kind: str
    customer_id: str
    merchant_id: str | None
    principal_fen: int
    opened_at: datetime
    monthly_rate: Decimal
    method: str | None
    late_fee_rate_per_day: Decimal
    monthly_fee_rate: Decimal  # of the current plan: 0 unless converted into instalments
    plan_no: int
    schedule: tuple[Instalment, ...]
    replayed: bool = False


@dataclass(frozen=True)
class CreditLine:
    customer_id: str
    limit_fen: int
    used_fen: int

    @property
    def available_fen(self) -> int:
        return max(self.limit_fen - self.used_fen, 0)


def ensure_credit_accounts(conn: psycopg.Connection[Any]) -> None:
    for code, (name, account_type) in _PLATFORM.items():
        chart.ensure(conn, code, name, account_type)


def _lock(conn: psycopg.Connection[Any], namespace: int, key: str) -> None:
    conn.execute("select pg_advisory_xact_lock(%s, hashtext(%s))", (namespace, key))


def lock_loan(conn: psycopg.Connection[Any], loan_id: str) -> None:
    """Serialize the steps of one loan (repay, convert, payoff) within the caller's transaction."""
    _lock(conn, _LOCK_LOAN, loan_id)


def open_credit_line(conn: psycopg.Connection[Any], customer_id: str, limit_fen: object) -> CreditLine:
    """Open the customer's credit line or change its limit (a new row; the latest applies)."""
    customer_id = parse_party_id(customer_id, field="customerId")
    limit = parse_amount(limit_fen, field="limit")
    with database_transaction(conn):
        _lock(conn, _LOCK_LINE, customer_id)
        current = _line_limit(conn, customer_id)
        if current != limit:
            conn.execute("insert into ledger.credit_lines (customer_id, limit_fen) values (%s, %s)",
                         (customer_id, limit))
        return credit_line(conn, customer_id)


def _line_limit(conn: psycopg.Connection[Any], customer_id: str) -> int | None:
    row = conn.execute("""select limit_fen from ledger.credit_lines where customer_id = %s
                          order by id desc limit 1""", (customer_id,)).fetchone()
    return None if row is None else int(row[0])


def credit_line(conn: psycopg.Connection[Any], customer_id: str) -> CreditLine:
    limit = _line_limit(conn, customer_id)
    if limit is None:
        raise NoCreditLine(f"customer {customer_id} has no credit line", customer_id=customer_id)
    # Used = principal still outstanding on the customer's purchases (repaid or written off frees it).
    row = conn.execute(
        """select coalesce(sum(b.posted_debits - b.posted_credits), 0)
             from ledger.loans l join ledger.balances b on b.account_id = l.principal_account_id
            where l.customer_id = %s and l.kind = 'purchase'""", (customer_id,)).fetchone()
    return CreditLine(customer_id, limit, int(row[0]) if row else 0)


def _request(**fields: Any) -> dict[str, Any]:
    """A request as stored for replays: JSON-normal (dates and decimals as text)."""
    return dict(json.loads(json.dumps(fields, default=str, sort_keys=True)))


def _replayed_loan(conn: psycopg.Connection[Any], key: str, request: dict[str, Any]) -> Loan | None:
    row = conn.execute("select id, request from ledger.loans where idempotency_key = %s", (key,)).fetchone()
    if row is None:
        return None
    if row[1] != request:
        raise IdempotencyConflict(f"idempotency key {key} was already used for a different request",
                                  idempotency_key=key)
    return dataclasses.replace(get_loan(conn, row[0]), replayed=True)


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= 200:
        raise ValidationError("idempotencyKey must be 1 to 200 characters", field="idempotencyKey")
    return key


def _rate(value: object, *, field: str, maximum: Decimal) -> Decimal:
    try:
        rate = value if isinstance(value, Decimal) else parse_rate(value, field=field)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ValidationError(str(exc), field=field) from None
    if not rate.is_finite() or rate.is_signed() or rate > maximum:
        raise ValidationError(f"{field} must be a decimal from 0 to {maximum} a month, got {value}", field=field)
    return rate.normalize() if rate else Decimal(0)


def purchase_on_credit(
    conn: psycopg.Connection[Any], idempotency_key: str, customer_id: str, merchant_id: str,
    amount_fen: object, purchased_at: datetime,
) -> Loan:
    """Pay the merchant from the customer's credit line: Dr principal:L / Cr merchant payable."""
    key = _check_key(idempotency_key)
    customer_id = parse_party_id(customer_id, field="customerId")
    merchant_id = parse_party_id(merchant_id, field="merchantId")
    amount = parse_amount(amount_fen, field="amount")
    if not isinstance(purchased_at, datetime) or purchased_at.tzinfo is None:
        raise ValidationError("purchasedAt must be a date and time with a UTC offset", field="purchasedAt")
    if purchased_at > datetime.now(UTC) + purchase_future_max:
        raise ValidationError(f"purchasedAt {purchased_at.isoformat()} is in the future", field="purchasedAt")
    request = _request(op="purchase", customer_id=customer_id, merchant_id=merchant_id, amount=amount,
                       purchased_at=purchased_at.astimezone(UTC).isoformat())
    with database_transaction(conn):
        # Same key first, then the customer's line: every purchase takes them in this order.
        _lock(conn, _LOCK_KEY, key)
        replay = _replayed_loan(conn, key, request)
        if replay is not None:
            return replay
        _lock(conn, _LOCK_LINE, customer_id)
        line = credit_line(conn, customer_id)
        if amount > line.available_fen:
            raise CreditLimitExceeded(
                f"customer {customer_id} has {line.available_fen} fen of credit available "
                f"(limit {line.limit_fen}), {amount} requested",
                limit=line.limit_fen, available=line.available_fen, requested=amount)
        try:
            merchant = get_account(conn, chart.merchant_payable(merchant_id))
        except AccountNotFound:
            raise NotOnboarded(f"merchant {merchant_id} is not onboarded", merchant_id=merchant_id) from None
        settings = load_settings(conn, calendar.business_date(purchased_at))
        due = calendar.business_date(purchased_at) + timedelta(days=settings.interest_free_days)
        schedule = [Instalment(1, due, amount, 0, 0)]
        return _open(conn, key, request, kind="purchase", customer_id=customer_id, merchant_id=merchant_id,
                     principal=amount, opened_at=purchased_at, settings=settings, schedule=schedule,
                     monthly_rate=Decimal(0), method=None, counter_account=merchant.code)


def originate_loan(
    conn: psycopg.Connection[Any], idempotency_key: str, customer_id: str, principal_fen: object,
    monthly_rate: object, months: int, method: Method, start_date: date, late_fee_rate_per_day: object = None,
) -> Loan:
    """A bank-style loan with a fixed schedule, disbursed to the customer's wallet.

    Its late-fee rate is the one in force on `start_date` unless `late_fee_rate_per_day` sets
    this loan's own (within the same bounds as the setting).
    """
    key = _check_key(idempotency_key)
    customer_id = parse_party_id(customer_id, field="customerId")
    principal = parse_amount(principal_fen, field="principal")
    rate = _rate(monthly_rate, field="monthlyRate", maximum=monthly_rate_max)
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= loan_months_max:
        raise ValidationError(f"months must be a whole number from 1 to {loan_months_max}, got {months!r}",
                              field="months")
    if not isinstance(method, Method):
        raise ValidationError("method must be ANNUITY or EQUAL_PRINCIPAL", field="method")
    if not isinstance(start_date, date) or isinstance(start_date, datetime) or start_date > calendar.today():
        raise ValidationError(f"startDate must be a date no later than today, got {start_date!r}",
                              field="startDate")
    build = annuity_schedule if method is Method.ANNUITY else equal_principal_schedule
    try:
        schedule = build(principal, rate, months, start_date)
    except ValueError as exc:
        raise ValidationError(str(exc), field="principal") from None
    late_fee_rate = None if late_fee_rate_per_day is None else parse_rate_setting(
        "late_fee_rate_per_day", late_fee_rate_per_day, field="lateFeeRatePerDay")
    request = _request(op="originate", customer_id=customer_id, principal=principal, monthly_rate=str(rate),
                       months=months, method=method.value, start_date=start_date.isoformat())
    if late_fee_rate is not None:  # absent from requests made before a loan could carry its own
        request["late_fee_rate_per_day"] = str(late_fee_rate)
    with database_transaction(conn):
        _lock(conn, _LOCK_KEY, key)
        replay = _replayed_loan(conn, key, request)
        if replay is not None:
            return replay
        wallet = onboard_customer(conn, customer_id).accounts[0]
        settings = load_settings(conn, start_date)
        if late_fee_rate is not None:
            settings = dataclasses.replace(settings, late_fee_rate_per_day=late_fee_rate)
        return _open(conn, key, request, kind="loan", customer_id=customer_id, merchant_id=None,
                     principal=principal, opened_at=calendar.day_start(start_date), settings=settings,
                     schedule=schedule, monthly_rate=rate, method=method.value, counter_account=wallet.code)


def _open(
    conn: psycopg.Connection[Any], key: str, request: dict[str, Any], *, kind: str, customer_id: str,
    merchant_id: str | None, principal: int, opened_at: datetime, settings: CreditSettings,
    schedule: Sequence[Instalment], monthly_rate: Decimal, method: str | None, counter_account: str,
) -> Loan:
    """Create the loan's accounts and rows and post its opening, in the caller's transaction."""
    ensure_credit_accounts(conn)
    row = conn.execute("select nextval('ledger.loan_seq')").fetchone()
    assert row is not None
    seq = int(row[0])
    loan_id = f"L{seq}"
    accounts = [
        chart.ensure(conn, principal_account(loan_id), f"Loan {loan_id} principal", AccountType.ASSET,
                     holder_id=customer_id),
        chart.ensure(conn, fees_account(loan_id), f"Loan {loan_id} instalment fees", AccountType.ASSET,
                     holder_id=customer_id),
        chart.ensure(conn, interest_account(loan_id), f"Loan {loan_id} interest", AccountType.ASSET,
                     holder_id=customer_id),
        chart.ensure(conn, late_fees_account(loan_id), f"Loan {loan_id} late fees", AccountType.ASSET,
                     holder_id=customer_id),
        chart.ensure(conn, allowance_account(loan_id), f"Loan {loan_id} allowance for credit losses",
                     AccountType.ASSET, contra=True),
    ]
    conn.execute(
        """insert into ledger.loans (seq, id, idempotency_key, request, kind, customer_id, merchant_id,
               principal_fen, opened_at, monthly_rate, method, late_fee_rate_per_day, principal_account_id,
               fees_account_id, interest_account_id, late_fees_account_id, allowance_account_id)
           values (%s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (seq, loan_id, key, json.dumps(request), kind, customer_id, merchant_id, principal, opened_at,
         monthly_rate, method, settings.late_fee_rate_per_day, *[a.id for a in accounts]))
    _insert_plan(conn, loan_id, 1, key, request, Decimal(0), opened_at, schedule)
    kind_name = "credit.purchase" if kind == "purchase" else "credit.disburse"
    posted = post(conn, [Transfer(key, kind_name, [
        Leg(principal_account(loan_id), Side.DEBIT, principal), Leg(counter_account, Side.CREDIT, principal)],
        description=f"{kind} {loan_id} for {customer_id}", effective_at=opened_at,
        metadata={"loan_id": loan_id, "customer_id": customer_id})])
    record_steps(conn, [(posted[0].transaction_id, loan_id, "open", calendar.business_date(opened_at))])
    return get_loan(conn, loan_id)


def _insert_plan(
    conn: psycopg.Connection[Any], loan_id: str, plan_no: int, key: str, request: dict[str, Any],
    monthly_fee_rate: Decimal, made_at: datetime, schedule: Sequence[Instalment],
) -> None:
    conn.execute(
        """insert into ledger.loan_plans (loan_id, plan_no, idempotency_key, request, monthly_fee_rate, made_at)
           values (%s, %s, %s, %s::jsonb, %s, %s)""",
        (loan_id, plan_no, key, json.dumps(request), monthly_fee_rate, made_at))
    with conn.cursor() as cur:
        cur.executemany(
            """insert into ledger.loan_instalments
                   (loan_id, plan_no, number, due_date, principal_fen, interest_fen, fee_fen)
               values (%s, %s, %s, %s, %s, %s, %s)""",
            [(loan_id, plan_no, i.number, i.due_date, i.principal_fen, i.interest_fen, i.fee_fen)
             for i in schedule])


def record_steps(conn: psycopg.Connection[Any], steps: Sequence[tuple[int, str, str, date]]) -> None:
    """Say which transaction is which step of which loan (same database transaction as the post)."""
    if not steps:
        return
    conn.execute(
        """insert into ledger.loan_steps (transaction_id, loan_id, step, business_date)
           select * from unnest(%s::bigint[], %s::text[], %s::text[], %s::date[])
           on conflict (transaction_id) do nothing""",
        ([s[0] for s in steps], [s[1] for s in steps], [s[2] for s in steps], [s[3] for s in steps]))


def convert_to_instalments(
    conn: psycopg.Connection[Any], idempotency_key: str, loan_id: str, instalments: int,
    monthly_fee_rate: object, converted_at: datetime | None = None,
) -> Loan:
    """Replace a purchase's single due date by N monthly instalments, the first on that due date.

    The fee per period is the original principal x the monthly fee rate; the principal splits
    evenly with the odd fen in the last instalment. Nothing moves money now: each fee is billed
    on its due date by the daily job.
    """
    key = _check_key(idempotency_key)
    if isinstance(instalments, bool) or not isinstance(instalments, int) or not 2 <= instalments <= instalments_max:
        raise ValidationError(f"instalments must be a whole number from 2 to {instalments_max}, got {instalments!r}",
                              field="instalments")
    rate = _rate(monthly_fee_rate, field="monthlyFeeRate", maximum=monthly_fee_rate_max)
    at = converted_at or datetime.now(UTC)
    if at.tzinfo is None:
        raise ValidationError("convertedAt must carry a UTC offset", field="convertedAt")
    request = _request(op="convert", loan_id=loan_id, instalments=instalments, monthly_fee_rate=str(rate))
    with database_transaction(conn):
        lock_loan(conn, loan_id)
        row = conn.execute("select loan_id, request from ledger.loan_plans where idempotency_key = %s",
                           (key,)).fetchone()
        if row is not None:
            if row[1] != request:
                raise IdempotencyConflict(f"idempotency key {key} was already used for a different request",
                                          idempotency_key=key)
            return dataclasses.replace(get_loan(conn, row[0]), replayed=True)
        loan = get_loan(conn, loan_id)
        if not loan.opened_at <= at <= datetime.now(UTC) + purchase_future_max:
            raise ValidationError(f"convertedAt must lie between the purchase ({loan.opened_at.isoformat()}) and now",
                                  field="convertedAt")
        _check_convertible(conn, loan, calendar.business_date(at))
        first_due = loan.schedule[0].due_date
        try:
            plan = instalment_conversion_schedule(loan.principal_fen, rate, instalments, first_due)
        except ValueError as exc:
            raise ValidationError(str(exc), field="monthlyFeeRate") from None
        # The first instalment falls on the purchase's own due date, the rest monthly after it.
        plan = [dataclasses.replace(i, due_date=add_months(first_due, i.number - 1)) for i in plan]
        _insert_plan(conn, loan.id, 2, key, request, rate, at, plan)
        return get_loan(conn, loan.id)


def _check_convertible(conn: psycopg.Connection[Any], loan: Loan, on: date) -> None:
    if loan.kind != "purchase":
        raise ConversionRefused(f"loan {loan.id} is a bank-style loan; only purchases convert", loan_id=loan.id)
    if loan.plan_no != 1:
        raise ConversionRefused(f"loan {loan.id} was already converted into instalments", loan_id=loan.id)
    if on > loan.schedule[0].due_date:
        raise ConversionRefused(f"loan {loan.id} fell due on {loan.schedule[0].due_date}; convert before then",
                                loan_id=loan.id)
    row = conn.execute(
        """select exists (select 1 from ledger.loan_steps where loan_id = %s and step in ('repay', 'payoff')),
                  exists (select 1 from ledger.loan_closures where loan_id = %s)""", (loan.id, loan.id)).fetchone()
    assert row is not None
    if row[1]:
        raise LoanClosed(f"loan {loan.id} is closed", loan_id=loan.id)
    if row[0]:
        raise ConversionRefused(f"loan {loan.id} was partly repaid; convert before repaying", loan_id=loan.id)


_LOAN_SQL = """
select l.id, l.seq, l.kind, l.customer_id, l.merchant_id, l.principal_fen, l.opened_at, l.monthly_rate,
       l.method, l.late_fee_rate_per_day, p.monthly_fee_rate, p.plan_no
  from ledger.loans l
  join lateral (select * from ledger.loan_plans p where p.loan_id = l.id order by plan_no desc limit 1) p on true
 where l.id = any(%s)
"""


def get_loans(conn: psycopg.Connection[Any], loan_ids: Sequence[str]) -> dict[str, Loan]:
    """Loans with their current schedule, in two queries whatever their number."""
    rows = conn.execute(_LOAN_SQL, (list(loan_ids),)).fetchall()
    schedules: dict[str, list[Instalment]] = {}
    for r in conn.execute(
            """select i.loan_id, i.number, i.due_date, i.principal_fen, i.interest_fen, i.fee_fen
                 from ledger.loan_instalments i
                where i.loan_id = any(%s)
                  and i.plan_no = (select max(plan_no) from ledger.loan_plans p where p.loan_id = i.loan_id)
                order by i.loan_id, i.number""", (list(loan_ids),)):
        schedules.setdefault(r[0], []).append(Instalment(r[1], r[2], int(r[3]), int(r[4]), int(r[5])))
    return {r[0]: Loan(r[0], int(r[1]), r[2], r[3], r[4], int(r[5]), r[6], Decimal(r[7]), r[8], Decimal(r[9]),
                       Decimal(r[10]), int(r[11]), tuple(schedules.get(r[0], ()))) for r in rows}


def get_loan(conn: psycopg.Connection[Any], loan_id: str) -> Loan:
    if not isinstance(loan_id, str) or not loan_id:
        raise ValidationError("loanId must be a loan id such as L1", field="loanId")
    found = get_loans(conn, [loan_id]).get(loan_id)
    if found is None:
        raise LoanNotFound(f"no loan {loan_id}", loan_id=loan_id)
    return found
