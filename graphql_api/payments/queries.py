"""`payment(id)`, `payments(customerId, merchantId, first, after)` and `clientMoney(asOf)`."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, page_size, principal_of, require_role
from graphql_api.core.types import PageInfo, parse_id
from graphql_api.payments.types import READERS, ClientMoney, Payment, PaymentConnection, PaymentEdge, visible_payment
from graphql_api.scalars import DateTime
from ledger.cursors import encode_cursor
from ledger.products import payments
from ledger.tokens import Role

__all__ = ["PaymentsQuery"]


@strawberry.type
class PaymentsQuery:
    @strawberry.field(description="The payment with this id; null when there is none the caller may see.")
    async def payment(self, info: Info, id: strawberry.ID) -> Payment | None:
        payment_id = parse_id(id, "id")
        row = (await context_of(info).run(payments.get_payments, [payment_id])).get(payment_id)
        return Payment.of(row) if row is not None and visible_payment(info, row) else None

    @strawberry.field(description="Payments newest first, optionally of one customer and/or merchant. "
                                  "Holders see only payments they made or received.")
    async def payments(self, info: Info, customer_id: str | None = None, merchant_id: str | None = None,
                       first: int | None = None, after: str | None = None) -> PaymentConnection:
        size = page_size(info, first)
        principal = principal_of(info)
        party_id = principal.holder_id if principal.role is Role.HOLDER else None
        page = await context_of(info).run(payments.list_payments, customer_id=customer_id, merchant_id=merchant_id,
                                          party_id=party_id, first=size, after=after)
        edges = [PaymentEdge(cursor=encode_cursor({"id": p.id}), node=Payment.of(p)) for p in page.payments]
        return PaymentConnection(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], page.has_next_page,
                                                                    after))

    @strawberry.field(description="Client-money reserves against client liabilities (wallets, merchant and "
                                  "supplier payables, fund subscriptions owed), now or as of an effective time.")
    async def client_money(self, info: Info, as_of: DateTime | None = None) -> ClientMoney:
        require_role(info, *READERS)
        return ClientMoney.of(await context_of(info).run(payments.client_money, as_of=as_of))
