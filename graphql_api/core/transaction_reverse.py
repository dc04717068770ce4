"""`reverseTransaction`: a new transaction with the opposite legs; at most once per transaction."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core.gather import gatherer_of
from graphql_api.core.transaction_post import POSTERS, posted_transaction
from graphql_api.core.types import Transaction, parse_id
from graphql_api.errors import error_result, result_union
from ledger.errors import LedgerError
from ledger.posting import Reverse

__all__ = ["ReverseTransactionInput", "TransactionReversed", "ReverseTransactionResult",
           "TransactionReverseMutation"]


@strawberry.input
class ReverseTransactionInput:
    idempotency_key: str
    transaction_id: strawberry.ID
    description: str = ""


@strawberry.type(description="The reversing transaction (its `reverses` is the original).")
class TransactionReversed:
    transaction: Transaction
    replayed: bool


ReverseTransactionResult = result_union("ReverseTransactionResult", TransactionReversed)


@strawberry.type
class TransactionReverseMutation:
    @strawberry.mutation(description="Reverse a transaction's posted legs with a new transaction.")
    async def reverse_transaction(self, info: Info, input: ReverseTransactionInput) -> ReverseTransactionResult:
        try:
            require_role(info, *POSTERS)
            request = Reverse(input.idempotency_key, parse_id(input.transaction_id, "transactionId"),
                              description=input.description)
            posted = await gatherer_of(context_of(info).state).post(request)
            return TransactionReversed(transaction=await posted_transaction(info, posted),
                                       replayed=posted.replayed)
        except LedgerError as exc:
            return error_result(exc, ReverseTransactionResult)
