"""A realistic demo book, built only through the core and product APIs (`ledger-core demo`).

Imports run one way: `anchor` holds what every part shares (the anchor date, the history length,
the parties); `book` (the platform's own history) and one part per product import it; `loader`
imports the parts and runs them in order. Of the application only the command line (`ledger-core demo`,
`serve --demo`) imports it; the core and the products never do.
"""
