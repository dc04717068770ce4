"""`postTransaction`: post a balanced transaction, idempotently."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role
from graphql_api.core import loaders
from graphql_api.core.gather import Posted, gatherer_of
from graphql_api.core.inputs import EntryInput, legs_of
from graphql_api.core.types import Transaction
from graphql_api.errors import error_result, result_union
from graphql_api.input_conversion import converted_once
from graphql_api.scalars import JSON, DateTime, json_object
from ledger.errors import LedgerError
from ledger.posting import Transfer
from ledger.tokens import Role

__all__ = ["PostTransactionInput", "PostedTransaction", "PostTransactionResult", "TransactionPostMutation",
           "POSTERS", "posted_transaction"]

POSTERS = (Role.OPERATOR, Role.ADMIN)


@converted_once  # the hottest input: graphql_api/input_conversion.py
@strawberry.input
class PostTransactionInput:
    idempotency_key: str
    kind: str
    entries: list[EntryInput]
    description: str = ""
    effective_at: DateTime | None = None
    metadata: JSON | None = None


@strawberry.type(description="The transaction; `replayed` when the key was seen before with the same request.")
class PostedTransaction:
    transaction: Transaction
    replayed: bool


PostTransactionResult = result_union("PostTransactionResult", PostedTransaction)


async def posted_transaction(info: Info, posted: Posted | int) -> Transaction:
    """The transaction posted (a gatherer's result, whose row came along, or a transaction id)."""
    loader = context_of(info).loader(loaders.transactions_by_id)
    if isinstance(posted, int):
        return Transaction.of(await loader.load(posted))
    if posted.transaction is not None:
        loader.prime(posted.transaction_id, posted.transaction)
    return Transaction.of(await loader.load(posted.transaction_id))


@strawberry.type
class TransactionPostMutation:
    @strawberry.mutation(description="Post a balanced transaction; the same key and request again is a replay.")
    async def post_transaction(self, info: Info, input: PostTransactionInput) -> PostTransactionResult:
        try:
            require_role(info, *POSTERS)
            request = Transfer(input.idempotency_key, input.kind, legs_of(input.entries),
                               description=input.description, effective_at=input.effective_at,
                               metadata=json_object(input.metadata))
            posted = await gatherer_of(context_of(info).state).post(request)
            return PostedTransaction(transaction=await posted_transaction(info, posted),
                                     replayed=posted.replayed)
        except LedgerError as exc:
            return error_result(exc, PostTransactionResult)
