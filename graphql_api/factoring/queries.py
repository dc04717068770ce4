"""`advance(id)`, `advances(supplierId, status, first, after)`, `purchaseInvoice(supplierId, invoiceNo)`."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, page_size, principal_of
from graphql_api.core.types import PageInfo, parse_id
from graphql_api.factoring.types import (
    Advance,
    AdvanceConnection,
    AdvanceEdge,
    AdvanceStatus,
    PurchaseInvoice,
    can_see_supplier,
)
from ledger.cursors import decode_cursor, encode_cursor
from ledger.errors import ValidationError
from ledger.products import factoring as product
from ledger.tokens import Role

__all__ = ["FactoringQuery"]


@strawberry.type
class FactoringQuery:
    @strawberry.field(description="The advance with this id; null when there is none the caller may see.")
    async def advance(self, info: Info, id: strawberry.ID) -> Advance | None:
        advance_id = parse_id(id, "id")
        row = (await context_of(info).run(product.get_advances, [advance_id])).get(advance_id)
        return Advance.of(row) if row is not None and can_see_supplier(info, row.supplier_id) else None

    @strawberry.field(description="Advances in id order, optionally of one supplier and status "
                                  "(holders see only their own).")
    async def advances(self, info: Info, supplier_id: str | None = None, status: AdvanceStatus | None = None,
                       first: int | None = None, after: str | None = None) -> AdvanceConnection:
        size = page_size(info, first)
        principal = principal_of(info)
        if principal.role is Role.HOLDER:
            if supplier_id is not None and supplier_id != principal.holder_id:
                return AdvanceConnection(edges=[], page_info=PageInfo.of([], False, after))
            supplier_id = principal.holder_id
        after_id = decode_cursor(after, fields={"id": int})["id"] if after is not None else None
        if size == 0:
            return AdvanceConnection(edges=[], page_info=PageInfo.of([], False, after))
        if size > product.page_size_max:
            raise ValidationError(f"first must be at most {product.page_size_max} for advances", field="first")
        rows = await context_of(info).run(product.list_advances, supplier_id=supplier_id,
                                          status=status.value if status else None, after_id=after_id,
                                          limit=size + 1)
        edges = [AdvanceEdge(cursor=encode_cursor({"id": row.id}), node=Advance.of(row)) for row in rows[:size]]
        return AdvanceConnection(edges=edges, page_info=PageInfo.of([e.cursor for e in edges], len(rows) > size, after))

    @strawberry.field(description="A purchase invoice with what is paid of it; null when none the caller may see.")
    async def purchase_invoice(self, info: Info, supplier_id: str, invoice_no: str) -> PurchaseInvoice | None:
        if not can_see_supplier(info, supplier_id):
            return None
        try:
            return PurchaseInvoice.of(await context_of(info).run(product.get_invoice, supplier_id, invoice_no))
        except product.InvoiceNotFound:
            return None
