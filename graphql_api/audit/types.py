"""Types of the audit area: the journal feed's connection, digests, reconciliation runs and the
differences later (backdated) postings make to a statement."""

from __future__ import annotations

from datetime import date, datetime

import strawberry
from strawberry.types import Info

from graphql_api.context import context_of
from graphql_api.core import loaders
from graphql_api.core.types import Account, Money, PageInfo, Side, Transaction
from graphql_api.scalars import MinorUnits
from ledger import reconcile as core_reconcile
from ledger.checkpoints import Digest
from ledger.statement_export import Statement as CoreStatement

__all__ = [
    "TransactionEdge", "TransactionConnection", "AuditDigest", "BankLine", "ReconciledEntry",
    "ReconciliationMatch", "UnmatchedBankLine", "BreakResolution", "ReconciliationBreak", "Reconciliation",
    "StatementChange", "StatementDifferences",
]


@strawberry.type
class TransactionEdge:
    cursor: str
    node: Transaction
    created_xact: str = strawberry.field(
        description="The database transaction that wrote it (xid8, as text): the feed's order is (createdXact, id).")


@strawberry.type(description="Transactions in journal-feed order; follow `pageInfo.endCursor` to never miss one.")
class TransactionConnection:
    edges: list[TransactionEdge]
    page_info: PageInfo


@strawberry.type(description="A digest over every account's chain head, record and history at a journal position; "
                             "keep `digest` and "
                             "check it later with `ledger-core verify --digest`.")
class AuditDigest:
    digest: str = strawberry.field(description="v2:<position>:<sha256 hex>")
    position: str = strawberry.field(description="The PostgreSQL snapshot (xmin:xmax:xip) the digest covers.")
    accounts: int = strawberry.field(description="Accounts covered (before version 2: accounts with at least one entry).")
    entries: str = strawberry.field(description="Entries covered (a 64-bit count, as text).")
    taken_at: datetime

    @classmethod
    def of(cls, digest: Digest) -> AuditDigest:
        return cls(digest=digest.digest, position=digest.position, accounts=digest.accounts,
                   entries=str(digest.entries), taken_at=digest.taken_at)


@strawberry.type(description="A line of the bank's statement file.")
class BankLine:
    line: int = strawberry.field(description="Line number in the file (1 is the header).")
    date: date
    reference: str
    amount: Money = strawberry.field(description="Signed: positive when the account's balance goes up.")
    description: str


@strawberry.type(description="A posted ledger entry of the reconciled account.")
class ReconciledEntry:
    transaction_id: strawberry.ID
    account_version: int
    amount: Money = strawberry.field(description="Signed on the account's normal side.")
    effective_at: datetime

    @strawberry.field
    async def transaction(self, info: Info) -> Transaction | None:
        row = await context_of(info).load(loaders.transactions_by_id, int(self.transaction_id))
        return Transaction.of(row) if row is not None else None


@strawberry.type
class ReconciliationMatch:
    rule: str = strawberry.field(description="reference, or amount_date")
    bank_line: BankLine
    entry: ReconciledEntry


@strawberry.type
class UnmatchedBankLine:
    bank_line: BankLine
    note: str = strawberry.field(description="Why a near candidate did not match, when there was one.")


@strawberry.type(description="How a break was resolved, and by whom (append-only).")
class BreakResolution:
    reason: str
    resolved_by: str
    resolved_at: datetime


@strawberry.type(description="An item a run left unmatched: a bank line or a ledger entry; open until resolved.")
class ReconciliationBreak:
    item_id: strawberry.ID = strawberry.field(description="The item's number in its run.")
    kind: str = strawberry.field(description="bank (a bank line with no entry) or ledger (an entry with no line)")
    bank_line: BankLine | None
    entry: ReconciledEntry | None
    note: str
    resolution: BreakResolution | None = strawberry.field(description="Null while the break is open.")


@strawberry.type(description="A stored bank reconciliation run (append-only).")
class Reconciliation:
    id: strawberry.ID
    account: Account
    file_sha256: str
    already_imported: bool = strawberry.field(
        description="This file (same bytes) was imported before for this account: the stored run answers.")
    window_days: int
    period_start: date
    period_end: date
    bank_total: Money
    ledger_total: Money = strawberry.field(
        description="The entries the run reports: matched ones (whatever their date) and unmatched ones effective "
                    "within the statement's dates.")
    difference: Money = strawberry.field(
        description="Bank total minus ledger total: the unmatched bank lines' sum minus the unmatched entries'.")
    matched: list[ReconciliationMatch]
    unmatched_bank_lines: list[UnmatchedBankLine]
    unmatched_ledger_entries: list[ReconciledEntry]
    breaks: list[ReconciliationBreak] = strawberry.field(
        description="The unmatched bank lines and entries, open or resolved.")
    encoding: str = strawberry.field(description="The encoding the file was read in: utf-8 or gb18030 (GBK).")
    created_at: datetime

    @classmethod
    def of(cls, run: core_reconcile.Reconciliation, account: Account) -> Reconciliation:
        c = run.currency

        def money(amount: int) -> Money:
            return Money(amount=MinorUnits(amount), currency=c)

        def line(x: core_reconcile.BankLine | None) -> BankLine:
            assert x is not None
            return BankLine(line=x.line_no, date=x.date, reference=x.reference, amount=money(x.amount),
                            description=x.description)

        def entry(x: core_reconcile.LedgerEntry | None) -> ReconciledEntry:
            assert x is not None
            return ReconciledEntry(transaction_id=strawberry.ID(str(x.transaction_id)),
                                   account_version=x.account_version, amount=money(x.amount),
                                   effective_at=x.effective_at)

        return cls(
            id=strawberry.ID(str(run.id)), account=account, file_sha256=run.file_sha256,
            already_imported=run.already_imported, window_days=run.window_days, period_start=run.period_start,
            period_end=run.period_end, bank_total=money(run.bank_total), ledger_total=money(run.ledger_total),
            difference=money(run.difference),
            matched=[ReconciliationMatch(rule=i.rule or "", bank_line=line(i.line), entry=entry(i.entry))
                     for i in run.matched],
            unmatched_bank_lines=[UnmatchedBankLine(bank_line=line(i.line), note=i.note) for i in run.unmatched_bank],
            unmatched_ledger_entries=[entry(i.entry) for i in run.unmatched_ledger],
            breaks=[ReconciliationBreak(
                item_id=strawberry.ID(str(i.item_no)), kind=i.status,
                bank_line=line(i.line) if i.line is not None else None,
                entry=entry(i.entry) if i.entry is not None else None, note=i.note,
                resolution=None if i.resolution is None else BreakResolution(
                    reason=i.resolution.reason, resolved_by=i.resolution.resolved_by,
                    resolved_at=i.resolution.resolved_at))
                for i in run.breaks],
            encoding=run.encoding, created_at=run.created_at)


@strawberry.type(description="A posted entry recorded after the statement's cut, effective before its end.")
class StatementChange:
    transaction_id: strawberry.ID
    account_version: int
    side: Side
    amount: Money
    effective_at: datetime
    recorded_at: datetime
    affects: str = strawberry.field(description="opening (effective before the period) or period")


@strawberry.type(description="How a statement cut at `knownAt` differs from the same statement cut now.")
class StatementDifferences:
    known_at: datetime
    journal_position: str = strawberry.field(
        description="The journal position of the cut: createdXact of the account's newest transaction recorded by "
                    "knownAt.")
    opening_as_known: Money
    closing_as_known: Money
    closing_now: Money
    changes: list[StatementChange]

    @classmethod
    def of(cls, s: CoreStatement) -> StatementDifferences:
        c = s.account.currency
        return cls(
            known_at=s.known_at, journal_position=str(s.position),
            opening_as_known=Money(amount=MinorUnits(s.opening), currency=c),
            closing_as_known=Money(amount=MinorUnits(s.closing), currency=c),
            closing_now=Money(amount=MinorUnits(s.closing_now), currency=c),
            changes=[StatementChange(transaction_id=strawberry.ID(str(x.transaction_id)),
                                     account_version=x.account_version, side=Side(x.side),
                                     amount=Money(amount=MinorUnits(x.amount), currency=c), effective_at=x.effective_at,
                                     recorded_at=x.recorded_at, affects=x.affects)
                     for x in s.later_changes])
