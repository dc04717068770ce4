"""A pure-Python model of the ledger core, for the stateful tests in tests/test_model.py.

It knows nothing of SQL: accounts with limits and statuses, a journal of transactions with
posted and pending legs, holds that resolve once or expire, reversals, idempotency keys, closed
periods, and balances now, as of an effective time and as known at a recorded time. Given a
request, `Model.predict` says what the engine must answer (accepted with these legs, a replay of
that transaction, or one of a set of typed errors); `Model.apply` records an accepted request.

Time: the model never reads a clock. Each step of a test is numbered; a request without an
effective time takes effect at the engine's clock during its step, which the test represents by
the database clock read just after the step (the step's checkpoint): so "effective at or before
checkpoint k" is exactly "posted in step k or earlier". Explicit times in the tests lie hours or
days away from any step, so comparing them with the engine's clock is never a close call.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ledger.errors import (
    AccountFrozen,
    AccountNotFound,
    AlreadyReversed,
    CurrencyMismatch,
    HoldExpired,
    HoldNotFound,
    HoldNotPending,
    IdempotencyConflict,
    InsufficientFunds,
    LedgerError,
    LimitExceeded,
    PeriodClosed,
    TransactionNotFound,
    UnbalancedTransaction,
    ValidationError,
)
from ledger.journal import HoldStatus
from ledger.posting import Hold, Leg, PostHold, Request, Reverse, Transfer, VoidHold

HOLD_LIFETIME_MAX = timedelta(days=30)    # ledger.settings hold_lifetime_max
FUTURE_EFFECTIVE_MAX = timedelta(days=7)  # ledger.settings future_effective_max
HOLD_EFFECTIVE_SLACK = timedelta(seconds=300)  # a hold's effective time must be this close to now
LEGS_MAX = 100

POSTED = "posted"
PENDING = "pending"


@dataclass
class ModelAccount:
    code: str
    normal_side: str  # "debit" or "credit"
    currency: str
    min_balance: int | None = None
    max_balance: int | None = None
    status: str = "open"


@dataclass(frozen=True)
class ModelLeg:
    account: str
    side: str
    amount: int
    layer: str


@dataclass
class ModelTxn:
    id: int
    key: str
    step: int
    effective_at: datetime
    legs: tuple[ModelLeg, ...]
    is_hold: bool = False
    expires_at: datetime | None = None  # None: the default expiry, 30 days ahead, never reached in a test
    expired: bool = False               # set once the test has waited past expires_at
    resolved_by: int | None = None      # the post or void of this hold
    hold_action: str | None = None      # "post" or "void", on the resolving transaction
    resolves: int | None = None
    reversed_by: int | None = None


@dataclass(frozen=True)
class Accepted:
    legs: tuple[ModelLeg, ...]


@dataclass(frozen=True)
class Replayed:
    transaction_id: int


@dataclass(frozen=True)
class Refused:
    errors: frozenset[type[LedgerError]]

    def allows(self, error: BaseException) -> bool:
        return type(error) in self.errors


Outcome = Accepted | Replayed | Refused


def refused(*errors: type[LedgerError]) -> Refused:
    return Refused(frozenset(errors))


@dataclass(frozen=True)
class ModelBalance:
    posted: int
    pending: int
    available: int


def fingerprint(request: Request) -> Request:
    """What makes two requests under one key the same request: everything but the key."""
    return dataclasses.replace(request, idempotency_key="")


@dataclass
class Model:
    accounts: dict[str, ModelAccount] = field(default_factory=dict)
    txns: dict[int, ModelTxn] = field(default_factory=dict)
    keys: dict[str, tuple[Request, int]] = field(default_factory=dict)
    refusals: dict[str, tuple[Request, type[LedgerError]]] = field(default_factory=dict)
    closed_until: datetime | None = None

    # -- balances ----------------------------------------------------------------------------

    def signed(self, leg: ModelLeg) -> int:
        return leg.amount if leg.side == self.accounts[leg.account].normal_side else -leg.amount

    def hold_flows(self, hold: ModelTxn, code: str) -> tuple[int, int]:
        """(outgoing, incoming) of a hold on an account: legs against and on its normal side."""
        normal = self.accounts[code].normal_side
        out = sum(leg.amount for leg in hold.legs if leg.account == code and leg.side != normal)
        incoming = sum(leg.amount for leg in hold.legs if leg.account == code and leg.side == normal)
        return out, incoming

    def active_holds(self) -> list[ModelTxn]:
        """Holds that still reserve funds now: unresolved and not expired."""
        return [t for t in self.txns.values() if t.is_hold and t.resolved_by is None and not t.expired]

    def balance_now(self, code: str) -> ModelBalance:
        posted = sum(self.signed(leg) for t in self.txns.values() for leg in t.legs
                     if leg.account == code and leg.layer == POSTED)
        pending_layer = sum(self.signed(leg) for t in self.txns.values() if counts_in_pending_now(t)
                            for leg in t.legs if leg.account == code and leg.layer == PENDING)
        out = sum(self.hold_flows(h, code)[0] for h in self.active_holds())
        return ModelBalance(posted, posted + pending_layer, posted - out)

    def balance_at(self, code: str, as_of: datetime | None, known_step: int | None,
                   known_at: datetime | None) -> ModelBalance:
        """As of an effective time (None: the end of time) as known after a step (None: now),
        `known_at` being that step's checkpoint. Holds are judged at the effective time, or
        without one at the recorded time (as the balance now judges them at the clock)."""
        known = [t for t in self.txns.values() if known_step is None or t.step <= known_step]
        effective = [t for t in known if as_of is None or t.effective_at <= as_of]
        posted = sum(self.signed(leg) for t in effective for leg in t.legs
                     if leg.account == code and leg.layer == POSTED)
        holds_at = as_of if as_of is not None else known_at
        flows = [self.hold_flows(h, code) for h in effective
                 if h.is_hold and hold_open_at(h, holds_at, [x for x in effective if x.resolves == h.id])]
        out, incoming = sum(f[0] for f in flows), sum(f[1] for f in flows)
        # Pending counts only the holds open then: an expired one reserves nothing.
        return ModelBalance(posted, posted + incoming - out, posted - out)

    def hold_status(self, hold: ModelTxn) -> HoldStatus:
        if hold.resolved_by is not None:
            return HoldStatus.POSTED if self.txns[hold.resolved_by].hold_action == "post" else HoldStatus.VOIDED
        return HoldStatus.EXPIRED if hold.expired else HoldStatus.PENDING

    # -- requests ----------------------------------------------------------------------------

    def predict(self, request: Request, now: datetime) -> Outcome:
        """The engine's answer to one request posted alone, `now` being its clock to within
        seconds. Checks run in the engine's order: Python's validation, the batch's shape, replays,
        legs, targets, status, balance, time, limits."""
        shape = self._shape(request, now)
        if shape is not None:
            return shape
        if request.idempotency_key in self.keys:
            earlier, transaction_id = self.keys[request.idempotency_key]
            if earlier == fingerprint(request):
                return Replayed(transaction_id)
            return refused(IdempotencyConflict)
        if request.idempotency_key in self.refusals:
            earlier, error = self.refusals[request.idempotency_key]
            return refused(error) if earlier == fingerprint(request) else refused(IdempotencyConflict)
        legs = self._legs(request, now)
        if isinstance(legs, Refused):
            return legs
        for leg in legs:
            if self.accounts[leg.account].status != "open" and not isinstance(request, VoidHold):
                return refused(AccountFrozen)
        balance = self._balance_check(legs)
        if balance is not None:
            return balance
        effective = request.effective_at or now
        if self.closed_until is not None and effective <= self.closed_until:
            return refused(PeriodClosed)
        if effective > now + FUTURE_EFFECTIVE_MAX:
            return refused(ValidationError)
        limits = self._limit_check(request, legs)
        if limits is not None:
            return limits
        return Accepted(legs)

    def predict_batch(self, requests: Sequence[Request], now: datetime) -> list[Outcome] | Refused:
        """A batch is all or nothing: each request judged after the ones before it. The engine
        checks stage by stage over the whole batch (shapes, replays, legs, targets, status,
        balance, time, limits), so when several requests would be refused it names one of them:
        any of their errors is allowed."""
        if len({r.idempotency_key for r in requests}) < len(requests):
            return refused(ValidationError)
        scratch = copy.deepcopy(self)
        outcomes: list[Outcome] = []
        errors: set[type[LedgerError]] = set()
        for position, request in enumerate(requests):
            outcome = scratch.predict(request, now)
            if isinstance(outcome, Refused):
                errors |= outcome.errors
            elif isinstance(outcome, Accepted):
                scratch.apply(request, outcome, -1 - position, -1, now)
            outcomes.append(outcome)
        targets = [r.transaction_id for r in requests if isinstance(r, Reverse)]
        if errors and len(set(targets)) < len(targets):
            # Two reversals of one transaction: the second's row breaks the one-reversal index as
            # the batch is written, a stage before the limits, whatever else the batch holds.
            errors.add(AlreadyReversed)
        return Refused(frozenset(errors)) if errors else outcomes

    def _shape(self, request: Request, now: datetime) -> Refused | None:
        if isinstance(request, (Transfer, Hold)) and (
                not 2 <= len(request.legs) <= LEGS_MAX or any(leg.amount <= 0 for leg in request.legs)):
            return refused(ValidationError)
        if isinstance(request, (Transfer, Hold)) and moves_nothing(request.legs):
            return refused(ValidationError)
        if isinstance(request, PostHold) and request.amount is not None and request.amount <= 0:
            return refused(ValidationError)
        if isinstance(request, Hold):
            if request.effective_at is not None and abs(request.effective_at - now) > HOLD_EFFECTIVE_SLACK:
                return refused(ValidationError)
            if request.expires_at is not None and not now < request.expires_at <= now + HOLD_LIFETIME_MAX:
                return refused(ValidationError)
        return None

    def _legs(self, request: Request, now: datetime) -> tuple[ModelLeg, ...] | Refused:
        if isinstance(request, (Transfer, Hold)):
            layer = PENDING if isinstance(request, Hold) else POSTED
            for leg in request.legs:
                if leg.account not in self.accounts:
                    return refused(AccountNotFound)
                if leg.currency is not None and leg.currency != self.accounts[leg.account].currency:
                    return refused(CurrencyMismatch)
            return tuple(ModelLeg(leg.account, leg.side.value, leg.amount, layer) for leg in request.legs)
        if isinstance(request, Reverse):
            target = self.txns.get(request.transaction_id)
            if target is None:
                return refused(TransactionNotFound)
            if target.reversed_by is not None:
                return refused(AlreadyReversed)
            posted = [leg for leg in target.legs if leg.layer == POSTED]
            if not posted:
                return refused(ValidationError)
            return tuple(ModelLeg(leg.account, opposite(leg.side), leg.amount, POSTED) for leg in posted)
        hold = self.txns.get(request.hold_id)
        if hold is None or not hold.is_hold:
            return refused(HoldNotFound)
        if hold.resolved_by is not None:
            return refused(HoldNotPending)
        release = tuple(ModelLeg(leg.account, opposite(leg.side), leg.amount, PENDING) for leg in hold.legs)
        if isinstance(request, VoidHold):
            return release
        if hold.expired:
            return refused(HoldExpired)
        if request.amount is not None and (len(hold.legs) != 2 or request.amount > max(leg.amount for leg in hold.legs)):
            return refused(ValidationError)
        return release + tuple(ModelLeg(leg.account, leg.side, request.amount or leg.amount, POSTED)
                               for leg in hold.legs)

    def _balance_check(self, legs: Sequence[ModelLeg]) -> Refused | None:
        nets: dict[tuple[str, str], int] = {}
        for leg in legs:
            key = (self.accounts[leg.account].currency, leg.layer)
            nets[key] = nets.get(key, 0) + (leg.amount if leg.side == "debit" else -leg.amount)
        if all(net == 0 for net in nets.values()):
            return None
        if len({currency for currency, _ in nets}) > 1:
            return refused(CurrencyMismatch)
        return refused(UnbalancedTransaction)

    def _limit_check(self, request: Request, legs: Sequence[ModelLeg]) -> Refused | None:
        """Invariant 4: a request may not move an account past a limit in the direction it moves
        it. When several accounts break limits the engine names any one of them."""
        errors: set[type[LedgerError]] = set()
        target = self.txns.get(request.hold_id) if isinstance(request, (PostHold, VoidHold)) else None
        for code in sorted({leg.account for leg in legs}):
            account = self.accounts[code]
            if account.min_balance is None and account.max_balance is None:
                continue
            now = self.balance_now(code)
            out_active = now.posted - now.available
            in_active = sum(self.hold_flows(h, code)[1] for h in self.active_holds())
            d_posted = sum(self.signed(leg) for leg in legs if leg.account == code and leg.layer == POSTED)
            d_out = d_in = 0
            if isinstance(request, Hold):
                d_out = sum(leg.amount for leg in legs if leg.account == code and leg.side != account.normal_side)
                d_in = sum(leg.amount for leg in legs if leg.account == code and leg.side == account.normal_side)
            elif target is not None and not target.expired:
                freed_out, freed_in = self.hold_flows(target, code)
                d_out, d_in = -freed_out, -freed_in
            posted_after = now.posted + d_posted
            if (account.min_balance is not None and d_posted - d_out < 0
                    and posted_after - (out_active + d_out) < account.min_balance):
                errors.add(InsufficientFunds)
            elif (account.max_balance is not None and d_posted + d_in > 0
                    and posted_after + in_active + d_in > account.max_balance):
                errors.add(LimitExceeded)
        return Refused(frozenset(errors)) if errors else None

    def apply(self, request: Request, outcome: Accepted, transaction_id: int, step: int,
              checkpoint: datetime) -> None:
        """Record an accepted request: its transaction took effect at its explicit time, or at
        the engine's clock during `step`, which `checkpoint` (read just after) stands for."""
        txn = ModelTxn(transaction_id, request.idempotency_key, step, request.effective_at or checkpoint,
                       outcome.legs)
        if isinstance(request, Hold):
            txn.is_hold = True
            txn.expires_at = request.expires_at
        elif isinstance(request, (PostHold, VoidHold)):
            txn.resolves = request.hold_id
            txn.hold_action = "post" if isinstance(request, PostHold) else "void"
            self.txns[request.hold_id].resolved_by = transaction_id
        elif isinstance(request, Reverse):
            self.txns[request.transaction_id].reversed_by = transaction_id
        self.txns[transaction_id] = txn
        self.keys[request.idempotency_key] = (fingerprint(request), transaction_id)

    def refuse(self, request: Request, error: type[LedgerError]) -> None:
        """Record a request the engine refused with `error` (posted alone)."""
        if error in RECORDED_REFUSALS:
            self.refusals[request.idempotency_key] = (fingerprint(request), error)

    def expire(self, hold_id: int) -> None:
        self.txns[hold_id].expired = True

    def close_period(self, until: datetime, now: datetime) -> Refused | None:
        if self.closed_until is not None and until <= self.closed_until:
            return refused(PeriodClosed)
        if until > now:
            return refused(ValidationError)
        self.closed_until = until
        return None


def opposite(side: str) -> str:
    return "credit" if side == "debit" else "debit"


def hold_open_at(hold: ModelTxn, at: datetime | None, resolutions: Sequence[ModelTxn]) -> bool:
    """Whether a hold reserved funds at `at` (given only what was known): made within the hold
    lifetime before it, not yet expired then, not resolved by what is counted."""
    if at is None:
        return False
    if not at - HOLD_LIFETIME_MAX < hold.effective_at:
        return False
    if hold.expires_at is not None and hold.expires_at <= at:
        return False
    return not resolutions


def counts_in_pending_now(txn: ModelTxn) -> bool:
    """Whether a transaction's pending legs count in the pending balance now: an expired hold that
    nobody voided reserves nothing, so it leaves pending as it leaves available."""
    return not (txn.is_hold and txn.expired and txn.resolved_by is None)


def moves_nothing(legs: Sequence[Leg]) -> bool:
    """Legs that net to zero on every account (Dr A 5 / Cr A 5): refused by Python's validation."""
    net: dict[str, int] = {}
    for leg in legs:
        net[leg.account] = net.get(leg.account, 0) + (leg.amount if leg.side.value == "debit" else -leg.amount)
    return not any(net.values())


# Refusals that depend on the ledger's state are final for their key: a retry of the same request
# answers the same error, another request under the key is a conflict. Malformed requests, key
# conflicts and unbalanced legs leave the key free.
RECORDED_REFUSALS: frozenset[type[LedgerError]] = frozenset({
    CurrencyMismatch, AccountNotFound, AccountFrozen, InsufficientFunds, LimitExceeded, PeriodClosed,
    HoldNotFound, HoldNotPending, HoldExpired, TransactionNotFound, AlreadyReversed,
})
