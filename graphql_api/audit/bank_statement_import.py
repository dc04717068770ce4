"""`importBankStatement` (admin, operator): reconcile a bank statement CSV against an account.

The file format and the matching rules are in ledger/reconcile.py. The CSV travels in the
request body, so the API's body limit bounds it; larger files go through
`ledger-core reconcile --file`.
"""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from graphql_api.audit.types import Reconciliation
from graphql_api.context import context_of, require_role
from graphql_api.core.types import Account, load_account
from graphql_api.errors import LedgerErrorType, error_result, register_error, result_union
from ledger import reconcile as core_reconcile
from ledger.errors import AccountNotFound, LedgerError
from ledger.tokens import Role

__all__ = ["ImportBankStatementInput", "BankStatementInvalid", "ImportBankStatementResult",
           "BankStatementImportMutation"]


@strawberry.input
class ImportBankStatementInput:
    account_code: str
    csv: str = strawberry.field(description="The file's text: a header row date,reference,amount[,description].")
    file_name: str | None = None
    window_days: int | None = strawberry.field(
        default=None, description=f"Days an amount match may lie from the bank date (default "
                                  f"{core_reconcile.window_days_default}, at most {core_reconcile.window_days_max}).")
    time_zone: str | None = strawberry.field(
        default=None, description="IANA zone of the bank's dates (default: the business time zone).")


@strawberry.type(description="The bank statement file cannot be read; `line` names where (0: the whole file).")
class BankStatementInvalid(LedgerErrorType):
    line: int
    details: JSON


register_error(core_reconcile.BankFileInvalid, BankStatementInvalid)

ImportBankStatementResult = result_union("ImportBankStatementResult", Reconciliation, BankStatementInvalid)


def _error(exc: LedgerError) -> object:
    if isinstance(exc, core_reconcile.BankFileInvalid):
        return BankStatementInvalid(code=exc.code, message=exc.message, line=exc.line, details=JSON({"line": exc.line}))
    return error_result(exc, ImportBankStatementResult)


@strawberry.type
class BankStatementImportMutation:
    @strawberry.mutation(description="Match a bank statement's lines to the account's entries (reference first, "
                                     "then amount and date), one to one; the run is stored. The same file twice "
                                     "answers with the stored run.")
    async def import_bank_statement(self, info: Info, input: ImportBankStatementInput) -> ImportBankStatementResult:
        try:
            require_role(info, Role.ADMIN, Role.OPERATOR)
            row = await load_account(info, input.account_code)
            if row is None:
                raise AccountNotFound(f"no account with code {input.account_code}", account=input.account_code)
            run = await context_of(info).run(
                core_reconcile.reconcile, input.account_code, input.csv.encode("utf-8"),
                file_name=input.file_name or "",
                window_days=core_reconcile.window_days_default if input.window_days is None else input.window_days,
                time_zone=input.time_zone)
            return Reconciliation.of(run, Account.of(row))
        except LedgerError as exc:
            return _error(exc)
