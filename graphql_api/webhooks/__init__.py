"""Webhooks in the API (admin only): endpoints made, listed, disabled, enabled, deleted, and
their delivery log."""
