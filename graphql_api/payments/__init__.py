"""Onboarding and payments in GraphQL: resolvers translate, ledger/products decide."""
