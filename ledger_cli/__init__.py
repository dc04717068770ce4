"""`ledger-core`, the command line: ledger_cli.main parses, each `*_commands` module registers an area's commands.

It sits on top: it may use graphql_api and the ledger; neither of them imports it.
"""
