"""`resolveReconciliationBreak` (admin, operator): record how a break of a stored run was resolved.

A break is an item the run left unmatched (a bank line or an entry); it is resolved once, with a
reason, by the caller (named by its token), append-only. The answer is the run as it stands.
"""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from graphql_api.audit.types import Reconciliation
from graphql_api.context import context_of, require_role
from graphql_api.core.types import Account, load_account, parse_id
from graphql_api.errors import error_result, result_union
from ledger import reconcile as core_reconcile
from ledger.errors import LedgerError
from ledger.tokens import Principal, Role

__all__ = ["ResolveReconciliationBreakInput", "ResolveReconciliationBreakResult", "BreakResolveMutation"]


@strawberry.input
class ResolveReconciliationBreakInput:
    run_id: strawberry.ID
    item_id: strawberry.ID = strawberry.field(description="The break's itemId in the run.")
    reason: str = strawberry.field(description=f"Why it is settled (1 to {core_reconcile.reason_length_max} "
                                               "characters).")


ResolveReconciliationBreakResult = result_union("ResolveReconciliationBreakResult", Reconciliation)


def resolver_name(principal: Principal) -> str:
    """Who resolved, as the record keeps it: the API token and its role."""
    return f"token {principal.token_id} ({principal.role.value})"


@strawberry.type
class BreakResolveMutation:
    @strawberry.mutation(description="Resolve a break of a stored reconciliation run with a reason (once).")
    async def resolve_reconciliation_break(self, info: Info, input: ResolveReconciliationBreakInput
                                           ) -> ResolveReconciliationBreakResult:
        try:
            principal = require_role(info, Role.ADMIN, Role.OPERATOR)
            run = await context_of(info).run(
                core_reconcile.resolve_break, parse_id(input.run_id, "runId"), parse_id(input.item_id, "itemId"),
                input.reason, resolver_name(principal))
            row = await load_account(info, run.account_code)
            assert row is not None
            return Reconciliation.of(run, Account.of(row))
        except LedgerError as exc:
            return error_result(exc, ResolveReconciliationBreakResult)
