"""The posting engine's Python face: requests, validation, one database call per batch.

Every write to the journal goes through `post`, which sends the whole batch to
`ledger.post_batch` (sql/functions/post_batch.sql) in one round trip. Python validates first so a caller
gets a precise message; the database checks everything again, so nothing slips past it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from ledger.accounts import Side
from ledger.errors import LedgerError, TotalsPast64Bits, ValidationError, translate
from ledger.instants import check_instant
from ledger.money import amount_max, parse_amount, parse_currency
from ledger.text import check_label, check_text

__all__ = [
    "Leg",
    "Transfer",
    "Hold",
    "PostHold",
    "VoidHold",
    "Reverse",
    "Request",
    "Posted",
    "post",
    "post_encoded",
    "encode",
    "post_one",
    "legs_per_transaction_max",
    "batch_size_max",
    "retries_max",
]

legs_per_transaction_max = 100
batch_size_max = 10_000
retries_max = 5  # serialization failures and deadlocks are retried; the batch is all or nothing
key_length_max = 200
description_length_max = 1000
_KIND = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")


@dataclass(frozen=True)
class Leg:
    account: str
    side: Side
    amount: int
    currency: str | None = None


@dataclass(frozen=True)
class Transfer:
    """A posted transaction: its legs move balances at once."""

    idempotency_key: str
    kind: str
    legs: Sequence[Leg]
    description: str = ""
    effective_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hold:
    """A pending transaction: reserves funds until posted, voided or expired."""

    idempotency_key: str
    kind: str
    legs: Sequence[Leg]
    description: str = ""
    effective_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PostHold:
    """Post a hold in full, or (two-leg holds only) in part; the rest is released."""

    idempotency_key: str
    hold_id: int
    amount: int | None = None
    kind: str = "hold.post"
    description: str = ""
    effective_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VoidHold:
    idempotency_key: str
    hold_id: int
    kind: str = "hold.void"
    description: str = ""
    effective_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reverse:
    """A new transaction with the opposite of another's posted legs; at most once per transaction."""

    idempotency_key: str
    transaction_id: int
    kind: str = "reversal"
    description: str = ""
    effective_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


Request = Transfer | Hold | PostHold | VoidHold | Reverse


@dataclass(frozen=True)
class Posted:
    transaction_id: int
    replayed: bool


def post(conn: psycopg.Connection[Any], requests: Sequence[Request]) -> list[Posted]:
    """Post a batch, all or nothing; returns one result per request, in order.

    On a connection with no transaction open, the batch commits before this returns and is
    retried on serialization failures and deadlocks. Inside the caller's transaction it
    becomes part of it (and the caller owns retries).

    A refusal for what the ledger holds is final for the refused request's key: it is recorded,
    and the same request again gets it back as a replay. A lock wait is bounded (the caller's
    lock_timeout, else the engine's `post_lock_timeout`) and ends in a retryable LockTimeout.
    See docs/design.md, "Refusals, timeouts and retries".
    """
    if not isinstance(requests, Sequence) or not requests:
        raise ValidationError("a batch is a non-empty list of requests", field="batch")
    if len(requests) > batch_size_max:
        raise ValidationError(f"a batch holds at most {batch_size_max} requests, got {len(requests)}", field="batch")
    return post_encoded(conn, [_encode(request) for request in requests])


def post_encoded(conn: psycopg.Connection[Any], encoded: Sequence[dict[str, Any]], *,
                 record_refusal: bool = True) -> list[Posted]:
    """`post` for requests already checked and encoded one by one with `encode` (a caller that
    must know which request a malformed one is). `record_refusal=False` keeps a refusal from being
    recorded under its key: for a caller whose whole batch is refused and must write nothing."""
    if not encoded or len(encoded) > batch_size_max:
        raise ValidationError(f"a batch holds 1 to {batch_size_max} requests, got {len(encoded)}", field="batch")
    payload = Jsonb(list(encoded))
    standalone = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    for attempt in range(retries_max + 1):
        try:
            if standalone and conn.autocommit:
                # The statement is its own database transaction: one round trip, not three.
                row = conn.execute("select ledger.post_batch(%s)", (payload,)).fetchone()
            else:
                # Inside the caller's transaction this is a savepoint: a refused batch leaves the
                # caller's earlier work intact for it to decide.
                with conn.transaction():
                    row = conn.execute("select ledger.post_batch(%s)", (payload,)).fetchone()
            assert row is not None
            return [Posted(int(r["id"]), bool(r["replayed"])) for r in row[0]]
        except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected):
            if not standalone or attempt == retries_max:
                raise
        except psycopg.Error as exc:
            error = _totals_past_64_bits(encoded) if isinstance(exc, pg_errors.NumericValueOutOfRange) \
                else translate(exc)
            if error is None:
                raise
            if record_refusal:
                _record_refusal(conn, encoded, error)
            raise error from exc
    raise AssertionError("unreachable")


def _totals_past_64_bits(encoded: Sequence[dict[str, Any]]) -> TotalsPast64Bits:
    """Every amount was checked to fit in 64 bits (`parse_amount`), and legs are summed as numeric:
    what overflows is a balance or running total the engine stores as bigint."""
    one = len(encoded) == 1
    message = (f"{'request 1: ' if one else ''}posting would carry the balance, or the running debit or credit "
               f"total, of an account {'it' if one else 'this batch'} posts to past 64 bits (at most "
               f"{amount_max} minor units); nothing was posted")
    return TotalsPast64Bits(message, field="entries", **({"request": 1} if one else {}))


def _record_refusal(conn: psycopg.Connection[Any], encoded: Sequence[dict[str, Any]], error: LedgerError) -> None:
    """Keep the refusal of the request at fault under its key, so that a retry is answered the same
    (the engine decides which refusals are final: sql/functions/refusals.sql).

    After the refused batch rolled back: on its own in autocommit, as a short transaction of its
    own on a connection post owned, else as part of the caller's transaction (which decides)."""
    position = error.details.get("request", 1 if len(encoded) == 1 else None)
    if error.sqlstate is None or error.details.get("replayed") or not isinstance(position, int) \
            or not 1 <= position <= len(encoded):
        return
    query = "select ledger.record_refusal(%s, %s, %s, %s)"
    arguments = (Jsonb(encoded[position - 1]), error.sqlstate, error.message, Jsonb(error.details))
    try:
        if conn.autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute(query, arguments)  # a transaction of its own, one round trip
        else:
            with conn.transaction():  # a transaction of its own, or a savepoint in the caller's
                conn.execute(query, arguments)
    except psycopg.Error:
        pass  # unrecorded, a retry is judged afresh: the refusal itself still reaches the caller


def post_one(conn: psycopg.Connection[Any], request: Request) -> Posted:
    return post(conn, [request])[0]


def encode(request: Request) -> dict[str, Any]:
    """The request checked and written as post_batch reads it (which fingerprints it, key aside,
    for replays); a ValidationError when it is malformed."""
    return _encode(request)


def _encode(request: Request) -> dict[str, Any]:
    """The request as post_batch reads it (which fingerprints it, key aside, for replays)."""
    body = _body(request)
    body["key"] = _key(request.idempotency_key)
    return body


def _body(request: Request) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": _kind(request.kind),
        "description": _description(request.description),
        "effective_at": _timestamp(request.effective_at, "effectiveAt"),
        "metadata": _metadata(request.metadata),
    }
    if isinstance(request, (Transfer, Hold)):
        body["op"] = "transfer" if isinstance(request, Transfer) else "hold"
        body["legs"] = _legs(request.legs)
        if isinstance(request, Hold) and request.expires_at is not None:
            body["expires_at"] = _timestamp(request.expires_at, "expiresAt")
    elif isinstance(request, PostHold):
        body["op"] = "post_hold"
        body["target_id"] = _id(request.hold_id, "holdId")
        if request.amount is not None:
            body["amount"] = parse_amount(request.amount)
    elif isinstance(request, VoidHold):
        body["op"] = "void_hold"
        body["target_id"] = _id(request.hold_id, "holdId")
    elif isinstance(request, Reverse):
        body["op"] = "reverse"
        body["target_id"] = _id(request.transaction_id, "transactionId")
    else:
        raise ValidationError(f"not a ledger request: {type(request).__name__}", field="batch")
    return body


def _legs(legs: Sequence[Leg]) -> list[dict[str, Any]]:
    if not isinstance(legs, Sequence) or not 2 <= len(legs) <= legs_per_transaction_max:
        count = len(legs) if isinstance(legs, Sequence) else 0
        raise ValidationError(
            f"a transaction has between 2 and {legs_per_transaction_max} legs, got {count}", field="entries"
        )
    encoded = []
    for leg in legs:
        if not isinstance(leg.account, str) or not leg.account:
            raise ValidationError(f"accountCode must be an account code, got {leg.account!r}", field="accountCode")
        try:
            side = Side(leg.side)
        except ValueError:
            raise ValidationError(f"side must be debit or credit, got {leg.side!r}", field="side") from None
        item: dict[str, Any] = {"account": leg.account, "side": side.value, "amount": parse_amount(leg.amount)}
        if leg.currency is not None:
            item["currency"] = parse_currency(leg.currency)
        encoded.append(item)
    _refuse_moving_nothing(encoded)
    return encoded


def _refuse_moving_nothing(legs: Sequence[Mapping[str, Any]]) -> None:
    """Dr A 5 / Cr A 5, or legs that cancel per account, would post a transaction that moves nothing."""
    net_by_account: dict[str, int] = {}
    for leg in legs:
        signed = leg["amount"] if leg["side"] == Side.DEBIT.value else -leg["amount"]
        net_by_account[leg["account"]] = net_by_account.get(leg["account"], 0) + signed
    if not any(net_by_account.values()):
        raise ValidationError("the transaction moves nothing: every account nets to zero across its legs",
                              field="entries")


def _key(key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= key_length_max:
        raise ValidationError(f"idempotencyKey must be 1 to {key_length_max} characters", field="idempotencyKey")
    return check_text(key, "idempotencyKey")


def _kind(kind: object) -> str:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind) or len(kind) > 100:
        raise ValidationError(
            f"kind must be dotted lowercase words such as payment.capture, got {kind!r}", field="kind"
        )
    return kind


def _description(description: object) -> str:
    if not isinstance(description, str) or len(description) > description_length_max:
        raise ValidationError(f"description must be text of at most {description_length_max} characters",
                              field="description")
    return check_label(description, "description")


def _metadata(metadata: object) -> dict[str, Any]:
    if not isinstance(metadata, Mapping):
        raise ValidationError("metadata must be a JSON object", field="metadata")
    if not metadata:
        return {}
    try:
        return dict(json.loads(json.dumps(metadata)))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"metadata must be JSON: {exc}", field="metadata") from None


def _timestamp(value: object, field_name: str) -> str | None:
    if value is None:
        return None
    return check_instant(value, field_name).isoformat()


def _id(value: object, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
        raise ValidationError(f"{field_name} must be a transaction id, got {value!r}", field=field_name)
    return value


