"""`loan(id)`, `loans(customerId, bucket)`, `payoffQuote(loanId)`, `creditLine(customerId)`."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, page_size, principal_of
from graphql_api.core.types import PageInfo
from graphql_api.credit.types import (
    CreditLine,
    DelinquencyBucket,
    Loan,
    LoanConnection,
    LoanEdge,
    PayoffQuote,
    can_see_customer,
)
from ledger.cursors import decode_cursor, encode_cursor
from ledger.products import credit, credit_repay, credit_view
from ledger.tokens import Role

__all__ = ["CreditQuery"]


async def _visible_view(info: Info, loan_id: str) -> credit_view.LoanView | None:
    try:
        view = await context_of(info).run(credit_view.loan_view, loan_id)
    except credit.LoanNotFound:
        return None
    return view if can_see_customer(info, view.loan.customer_id) else None


@strawberry.type
class CreditQuery:
    @strawberry.field(description="A loan with its schedule, outstanding amounts and delinquency, or null.")
    async def loan(self, info: Info, id: strawberry.ID) -> Loan | None:
        view = await _visible_view(info, str(id))
        return None if view is None else Loan.of(view)

    @strawberry.field(description="Loans in opening order, optionally one customer's and one bucket's "
                                  "(holders see only their own).")
    async def loans(
        self, info: Info, customer_id: str | None = None, bucket: DelinquencyBucket | None = None,
        first: int | None = None, after: str | None = None,
    ) -> LoanConnection:
        principal = principal_of(info)
        size = page_size(info, first)
        if principal.role is Role.HOLDER:
            if customer_id not in (None, principal.holder_id):
                return LoanConnection(edges=[], page_info=PageInfo.of([], False, after))
            customer_id = principal.holder_id
        after_seq = None if after is None else decode_cursor(after, fields={"seq": int})["seq"]
        views = await context_of(info).run(credit_view.list_loans, customer_id=customer_id, bucket=bucket,
                                           after_seq=after_seq, limit=size + 1)
        edges = [LoanEdge(cursor=encode_cursor({"seq": v.loan.seq}), node=Loan.of(v)) for v in views[:size]]
        return LoanConnection(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], len(views) > size, after))

    @strawberry.field(description="What paying the loan off today would cost, or null for an unknown loan.")
    async def payoff_quote(self, info: Info, loan_id: strawberry.ID) -> PayoffQuote | None:
        if await _visible_view(info, str(loan_id)) is None:
            return None
        return PayoffQuote.of(await context_of(info).run(credit_repay.payoff_quote, str(loan_id)))

    @strawberry.field(description="A customer's credit line, or null when it has none.")
    async def credit_line(self, info: Info, customer_id: str) -> CreditLine | None:
        if not can_see_customer(info, customer_id):
            return None
        try:
            return CreditLine.of(await context_of(info).run(credit.credit_line, customer_id))
        except credit.NoCreditLine:
            return None
