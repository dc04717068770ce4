"""The audit area's mutations, merged into the schema."""

from __future__ import annotations

from graphql_api.audit.bank_statement_import import BankStatementImportMutation
from graphql_api.audit.break_resolve import BreakResolveMutation

__all__ = ["AUDIT_MUTATIONS"]

AUDIT_MUTATIONS: list[type] = [
    BankStatementImportMutation,
    BreakResolveMutation,
]
