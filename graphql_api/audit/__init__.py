"""Auditors and reconciliation: the journal feed, digests, bank reconciliation, statement export."""
