"""Loans with their schedule, outstanding amounts and delinquency; credit lines; payoff quotes.

Amounts are `Money` (minor units as strings); rates cross as decimal strings ("0.005"). Holder
tokens see only their own loans and credit line.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import strawberry
from strawberry.types import Info

from graphql_api.context import principal_of
from graphql_api.core.product_accounts import AccountRole, ProductAccount, product_accounts
from graphql_api.core.types import Money, PageInfo
from graphql_api.scalars import MinorUnits
from ledger.products import chart, credit, credit_day, credit_repay, credit_view
from ledger.tokens import Role

__all__ = ["DelinquencyBucket", "LoanMethod", "LoanKind", "LoanStatus", "InstalmentStatus", "Instalment",
           "LoanOutstanding", "Loan", "LoanEdge", "LoanConnection", "CreditLine", "PayoffQuote",
           "LoanAllocation", "CreditDay", "money", "can_see_customer", "POSTERS", "CREDIT_OPERATORS"]

POSTERS = (Role.OPERATOR, Role.ADMIN)
CREDIT_OPERATORS = (Role.OPERATOR, Role.ADMIN)

# strawberry.enum marks the core's class in place; the plain aliases are what mypy reads as types.
DelinquencyBucket = credit.Bucket
LoanMethod = credit.Method
strawberry.enum(DelinquencyBucket, name="DelinquencyBucket",
                description="Days past due: 0, 1-30, 31-60, 61-90, 91-180, then write-off.")
strawberry.enum(LoanMethod, name="LoanMethod",
                description="ANNUITY: equal instalments; EQUAL_PRINCIPAL: equal principal parts.")


@strawberry.enum(description="A purchase on credit (buy now, pay later) or a bank-style loan.")
class LoanKind(enum.Enum):
    PURCHASE = "purchase"
    LOAN = "loan"


@strawberry.enum
class LoanStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    REPAID = "REPAID"
    PAID_OFF = "PAID_OFF"
    WRITTEN_OFF = "WRITTEN_OFF"


@strawberry.enum
class InstalmentStatus(enum.Enum):
    PAID = "PAID"
    PARTIALLY_PAID = "PARTIALLY_PAID"
    OVERDUE = "OVERDUE"
    DUE = "DUE"
    UPCOMING = "UPCOMING"
    WAIVED = "WAIVED"
    WRITTEN_OFF = "WRITTEN_OFF"


def money(amount: int) -> Money:
    return Money(amount=MinorUnits(int(amount)), currency=chart.currency)


def can_see_customer(info: Info, customer_id: str) -> bool:
    return principal_of(info).may_see_holder(customer_id)


@strawberry.type(description="One period of the schedule; `paid` allocates the loan's repayments per "
                             "component, oldest instalment first.")
class Instalment:
    number: int
    due_date: date
    principal: Money
    fee: Money
    interest: Money
    total: Money
    paid: Money
    status: InstalmentStatus

    @classmethod
    def of(cls, row: credit_view.InstalmentView) -> Instalment:
        return cls(number=row.number, due_date=row.due_date, principal=money(row.principal_fen),
                   fee=money(row.fee_fen), interest=money(row.interest_fen), total=money(row.total_fen),
                   paid=money(row.paid_fen), status=InstalmentStatus(row.status))


@strawberry.type(description="What the loan's receivables hold: billed and unpaid fees and interest, "
                             "late fees, and the principal not repaid.")
class LoanOutstanding:
    late_fees: Money
    fees: Money
    interest: Money
    principal: Money
    total: Money

    @classmethod
    def of(cls, owed: credit_repay.Allocation) -> LoanOutstanding:
        return cls(late_fees=money(owed.late_fees_fen), fees=money(owed.fees_fen),
                   interest=money(owed.interest_fen), principal=money(owed.principal_fen),
                   total=money(owed.total_fen))


@strawberry.type(description="How a payment was allocated: late fees, then fees, then interest, then principal.")
class LoanAllocation:
    late_fees: Money
    fees: Money
    interest: Money
    principal: Money

    @classmethod
    def of(cls, allocation: credit_repay.Allocation) -> LoanAllocation:
        return cls(late_fees=money(allocation.late_fees_fen), fees=money(allocation.fees_fen),
                   interest=money(allocation.interest_fen), principal=money(allocation.principal_fen))


@strawberry.type(description="A loan as of now, everything derived from its ledger accounts.")
class Loan:
    view: strawberry.Private[credit_view.LoanView]
    id: strawberry.ID
    kind: LoanKind
    customer_id: str
    merchant_id: str | None
    principal: Money = strawberry.field(description="The amount lent.")
    opened_at: datetime
    method: LoanMethod | None
    monthly_rate: str
    monthly_fee_rate: str = strawberry.field(description="Of the instalment plan; 0 unless converted.")
    late_fee_rate_per_day: str
    status: LoanStatus
    days_past_due: int
    bucket: DelinquencyBucket
    overdue: Money = strawberry.field(description="Due before today and unpaid (late fees not included).")
    outstanding: LoanOutstanding
    allowance: Money = strawberry.field(description="Allowance for credit losses held against the loan.")
    schedule: list[Instalment]
    as_of: datetime
    accounts: list[ProductAccount] = strawberry.field(
        description="The loan's own accounts: principal, fees, interest and late-fee receivables, allowance.")

    @classmethod
    def of(cls, view: credit_view.LoanView) -> Loan:
        loan = view.loan
        return cls(view=view, id=strawberry.ID(loan.id), kind=LoanKind(loan.kind), customer_id=loan.customer_id,
                   merchant_id=loan.merchant_id, principal=money(loan.principal_fen), opened_at=loan.opened_at,
                   method=credit.Method(loan.method) if loan.method else None, monthly_rate=str(loan.monthly_rate),
                   monthly_fee_rate=str(loan.monthly_fee_rate), late_fee_rate_per_day=str(loan.late_fee_rate_per_day),
                   status=LoanStatus(view.status), days_past_due=view.days_past_due, bucket=view.bucket,
                   overdue=money(view.overdue_fen), outstanding=LoanOutstanding.of(view.outstanding),
                   allowance=money(view.allowance_fen), schedule=[Instalment.of(i) for i in view.schedule],
                   as_of=view.as_of, accounts=product_accounts(
                       (AccountRole.PRINCIPAL, credit.principal_account(loan.id)),
                       (AccountRole.FEES, credit.fees_account(loan.id)),
                       (AccountRole.INTEREST, credit.interest_account(loan.id)),
                       (AccountRole.LATE_FEES, credit.late_fees_account(loan.id)),
                       (AccountRole.ALLOWANCE, credit.allowance_account(loan.id))))


@strawberry.type
class LoanEdge:
    cursor: str
    node: Loan


@strawberry.type
class LoanConnection:
    edges: list[LoanEdge]
    page_info: PageInfo


@strawberry.type(description="A customer's credit line: purchases may not take `used` above `limit`.")
class CreditLine:
    customer_id: str
    limit: Money
    used: Money = strawberry.field(description="Principal outstanding on the customer's purchases.")
    available: Money

    @classmethod
    def of(cls, line: credit.CreditLine) -> CreditLine:
        return cls(customer_id=line.customer_id, limit=money(line.limit_fen), used=money(line.used_fen),
                   available=money(line.available_fen))


@strawberry.type(description="What paying the loan off today costs; pass `total` as `expectedAmount`.")
class PayoffQuote:
    loan_id: strawberry.ID
    as_of: date
    outstanding: LoanOutstanding
    unbilled_due_fees: Money = strawberry.field(description="Fell due, not billed yet by the daily job.")
    unbilled_due_interest: Money
    remaining_fees: Money = strawberry.field(description="Fees of instalments to come, per the product setting.")
    total: Money

    @classmethod
    def of(cls, quote: credit_repay.PayoffQuote) -> PayoffQuote:
        return cls(loan_id=strawberry.ID(quote.loan_id), as_of=quote.as_of, outstanding=LoanOutstanding.of(quote.owed),
                   unbilled_due_fees=money(quote.unbilled_due_fees_fen),
                   unbilled_due_interest=money(quote.unbilled_due_interest_fen),
                   remaining_fees=money(quote.remaining_fees_fen), total=money(quote.total_fen))


@strawberry.type(description="What the daily job posted for a date (nothing on a re-run).")
class CreditDay:
    date: date
    bills: int
    late_fees: int
    provisions: int
    write_offs: int

    @classmethod
    def of(cls, report: credit_day.DayReport) -> CreditDay:
        return cls(date=report.date, bills=report.bills, late_fees=report.late_fees, provisions=report.provisions,
                   write_offs=report.write_offs)
