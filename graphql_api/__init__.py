"""The GraphQL API: a strawberry schema (`schema.py`) served by a Starlette app (`app.py`).

Areas add their own types under `graphql_api/<area>/` and append them to the lists in
`schema.py`; resolvers translate between GraphQL and the core, the core decides.
"""
