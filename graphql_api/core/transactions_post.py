"""`postTransactions`: up to `Limits.batch_transactions_max` transactions in one call, through the
engine's batch path (ledger/batch_posting.py), all or nothing (`atomic: true`) or each on its own.

Idempotency keys behave as for `postTransaction`, across single and batch calls and within one
batch. An atomic refusal is a `BatchRefused` naming the index (0-based) of the transaction at
fault and its typed error; nothing is written. One call is one request to the rate limiter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
import strawberry
from strawberry.types import Info

from graphql_api.context import context_of, require_role, run_db
from graphql_api.core.inputs import legs_of
from graphql_api.core.transaction_post import (
    POSTERS,
    PostedTransaction,
    PostTransactionInput,
    PostTransactionResult,
    posted_transaction,
)
from graphql_api.core.types import Transaction
from graphql_api.errors import LedgerErrorType, error_result, result_union
from graphql_api.metrics import metrics_of
from graphql_api.scalars import JSON, json_object
from ledger import batch_posting
from ledger.accounts import Side as CoreSide
from ledger.errors import LedgerError, ValidationError
from ledger.journal import Transaction as TransactionRow
from ledger.journal import get_transactions
from ledger.posting import Leg, Posted, Transfer

__all__ = ["PostTransactionsInput", "TransactionsPosted", "BatchRefused", "PostTransactionsResult",
           "TransactionsPostMutation"]


@strawberry.input(description="Transactions to post in one call; `atomic`: all or nothing.")
class PostTransactionsInput:
    atomic: bool
    transactions: list[PostTransactionInput]
    # The core's requests, built straight from the coerced input (see _from_input).
    requests: strawberry.Private[list[Transfer] | None] = None


def _from_input(cls: type, value: Mapping[str, Any], context: Any) -> PostTransactionsInput:
    """The input with its core requests built straight from graphql-core's coerced values
    (scalars and enums already parsed and checked): strawberry's generic conversion into input
    objects cost more than the engine's own work for 1,000 transactions. Strawberry calls this
    hook (`StrawberryObjectDefinition.from_input`) for every PostTransactionsInput it converts."""
    requests = [Transfer(item["idempotencyKey"], item["kind"],
                         [Leg(entry["accountCode"], CoreSide(entry["side"]), entry["amount"]) for entry in item["entries"]],
                         description=item.get("description", ""), effective_at=item.get("effectiveAt"),
                         metadata=json_object(item.get("metadata")))
                for item in value["transactions"]]
    return PostTransactionsInput(atomic=value["atomic"], transactions=[], requests=requests)


PostTransactionsInput.__strawberry_definition__.from_input = _from_input  # type: ignore[attr-defined]


@strawberry.type(description="One result per transaction, in the order sent.")
class TransactionsPosted:
    results: list[PostTransactionResult]
    posted_count: int = strawberry.field(description="Transactions this call wrote.")
    replayed_count: int = strawberry.field(description="Transactions answered as replays of earlier ones.")
    refused_count: int = strawberry.field(description="Transactions refused (never when atomic).")


@strawberry.type(description="An atomic batch refused because of one transaction: `index` (0-based) names it, "
                             "`error` is its own error. Nothing was written.")
class BatchRefused(LedgerErrorType):
    index: int
    error: LedgerErrorType
    details: JSON


PostTransactionsResult = result_union("PostTransactionsResult", TransactionsPosted, BatchRefused)


def _requests(inputs: list[PostTransactionInput]) -> list[Transfer]:
    return [Transfer(item.idempotency_key, item.kind, legs_of(item.entries), description=item.description,
                     effective_at=item.effective_at, metadata=json_object(item.metadata))
            for item in inputs]


def _with_rows(conn: psycopg.Connection[Any], outcomes: list[Any]) -> tuple[list[Any], dict[int, TransactionRow]]:
    """The outcomes, and the rows of the transactions posted, read in the same trip."""
    ids = [o.transaction_id for o in outcomes if isinstance(o, Posted)]
    try:
        rows = get_transactions(conn, ids) if ids else {}
    except psycopg.Error:
        rows = {}  # committed: a failed read-back must not answer them as failed (each is read again)
    return outcomes, rows


def _post_all(conn: psycopg.Connection[Any], requests: list[Transfer]) -> tuple[list[Any], dict[int, TransactionRow]]:
    return _with_rows(conn, list(batch_posting.post_all(conn, requests)))


def _post_each(conn: psycopg.Connection[Any], requests: list[Transfer]) -> tuple[list[Any], dict[int, TransactionRow]]:
    return _with_rows(conn, list(batch_posting.post_each(conn, requests)))


async def _transaction(info: Info, posted: Posted, rows: dict[int, TransactionRow]) -> Transaction:
    row = rows.get(posted.transaction_id)
    if row is None:
        return await posted_transaction(info, posted.transaction_id)
    return Transaction.of(row)


@strawberry.type
class TransactionsPostMutation:
    @strawberry.mutation(description="Post up to 1,000 transactions in one call (`Limits.batch_transactions_max`): "
                                     "all or nothing, or each on its own; keys behave as for postTransaction.")
    async def post_transactions(self, info: Info, input: PostTransactionsInput) -> PostTransactionsResult:
        try:
            require_role(info, *POSTERS)
            state = context_of(info).state
            limit = state.limits.batch_transactions_max
            count = len(input.requests if input.requests is not None else input.transactions)
            if not 1 <= count <= limit:
                raise ValidationError(f"transactions must hold 1 to {limit} transactions, got {count}",
                                      field="transactions", limit=limit, count=count)
            requests = input.requests if input.requests is not None else _requests(input.transactions)
            try:
                outcomes, rows = await run_db(info, _post_all if input.atomic else _post_each, requests)
            except batch_posting.BatchRefused as refused:
                metrics_of(state).observe_post_call(count, [])
                return BatchRefused(code=refused.code, message=refused.message, index=refused.index,
                                    error=error_result(refused.error, PostTransactionResult),
                                    details=JSON({"index": refused.index, "errorCode": refused.error.code}))
            metrics_of(state).observe_post_call(count, outcomes)
            results: list[Any] = []
            for outcome in outcomes:
                if isinstance(outcome, LedgerError):
                    results.append(error_result(outcome, PostTransactionResult))
                else:
                    results.append(PostedTransaction(transaction=await _transaction(info, outcome, rows),
                                                     replayed=outcome.replayed))
            posted = [o for o in outcomes if isinstance(o, Posted)]
            return TransactionsPosted(results=results, posted_count=sum(not o.replayed for o in posted),
                                      replayed_count=sum(o.replayed for o in posted),
                                      refused_count=len(outcomes) - len(posted))
        except LedgerError as exc:
            return error_result(exc, PostTransactionsResult)
