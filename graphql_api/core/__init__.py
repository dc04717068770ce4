"""The core's GraphQL face: Money, Account, Transaction, Entry, Hold, statements, the core
queries and mutations, and the balanceChanged subscription."""
