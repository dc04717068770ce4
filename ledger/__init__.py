"""An append-only double-entry ledger on PostgreSQL: the core (see docs/design.md)."""
