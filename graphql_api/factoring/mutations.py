"""The factoring mutations, one module each (noun first), merged here."""

from __future__ import annotations

from graphql_api.factoring.advance_default import AdvanceDefaultMutation
from graphql_api.factoring.advance_make import AdvanceMakeMutation
from graphql_api.factoring.advance_repay import AdvanceRepayMutation
from graphql_api.factoring.fee_accrue import FeeAccrueMutation
from graphql_api.factoring.invoice_record import InvoiceRecordMutation
from graphql_api.factoring.invoice_settle import InvoiceSettleMutation

__all__ = ["FACTORING_MUTATIONS"]

FACTORING_MUTATIONS: list[type] = [
    InvoiceRecordMutation,
    AdvanceMakeMutation,
    FeeAccrueMutation,
    InvoiceSettleMutation,
    AdvanceRepayMutation,
    AdvanceDefaultMutation,
]
