"""Factoring advances in the schema: purchase invoices, advances, fees, payments, defaults."""
