"""Mutation testing: small planted bugs the test suite must catch (docs/mutation-testing.md)."""
