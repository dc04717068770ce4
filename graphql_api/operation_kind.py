"""Marks each operation's context with whether it only reads (a query or a subscription), so
the database calls of a read are retried once on a lost connection and a mutation's never are."""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

__all__ = ["OperationKind"]


class OperationKind(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if hasattr(context, "reads_only"):
            context.reads_only = self.execution_context.operation_type is not OperationType.MUTATION
        yield
