"""Webhooks: endpoints that are sent every journal transaction, signed, at least once and in the
journal feed's order (docs/design.md, "Webhooks")."""
