"""Persisted queries: a client may send a document's sha256 instead of its text.

The request shape is that of Apollo's automatic persisted queries, so existing clients work:

    {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<64 hex digits>"}},
     "variables": {...}, "operationName": "..."}

- With the hash alone, a document the server knows runs as if its text had been sent; an unknown
  hash gets HTTP 200 with the error code PERSISTED_QUERY_NOT_FOUND (the client then sends the
  text once, with the hash).
- With the hash and the text, the text must hash to it (else HTTP 400,
  PERSISTED_QUERY_HASH_MISMATCH, and nothing runs); a document that parses and validates is then
  remembered under its hash.
- A `persistedQuery` that is not an object, a version other than 1, or a hash that is not 64
  hexadecimal digits gets HTTP 400, PERSISTED_QUERY_INVALID, naming the field.

The store is an LRU per server process (each worker of `serve --workers N` learns on its own; a
client meeting a worker that has not seen the document yet just sends the text once more). It
holds only documents that passed validation, so it cannot be filled with garbage, and it never
holds results: every request runs against the database.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["PersistedQueries", "PersistedQueryError", "persisted_queries_max"]

persisted_queries_max = 1_024  # per server process
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class PersistedQueryError(Exception):
    code: str
    message: str
    status: int
    field: str | None = None

    def body(self) -> dict[str, Any]:
        extensions: dict[str, Any] = {"code": self.code}
        if self.field is not None:
            extensions["field"] = self.field
        return {"errors": [{"message": self.message, "extensions": extensions}]}


def _invalid(message: str, field: str) -> PersistedQueryError:
    return PersistedQueryError("PERSISTED_QUERY_INVALID", message, 400, field)


class PersistedQueries:
    def __init__(self, maxsize: int = persisted_queries_max) -> None:
        self._maxsize = maxsize
        self._texts: OrderedDict[str, str] = OrderedDict()

    def requested_hash(self, body: dict[str, Any]) -> str | None:
        """The lowercase sha256 the request names, None when it names none; PersistedQueryError
        when `extensions.persistedQuery` is there but malformed."""
        extensions = body.get("extensions")
        if not isinstance(extensions, dict) or "persistedQuery" not in extensions:
            return None
        persisted = extensions["persistedQuery"]
        if not isinstance(persisted, dict):
            raise _invalid("extensions.persistedQuery must be an object", "extensions.persistedQuery")
        version = persisted.get("version")
        if type(version) is not int or version != 1:
            raise _invalid("extensions.persistedQuery.version must be 1", "extensions.persistedQuery.version")
        digest = persisted.get("sha256Hash")
        # fullmatch on a str only: no newline after the digits, no NUL, no other type.
        if not isinstance(digest, str) or not _SHA256_HEX.fullmatch(digest):
            raise _invalid("extensions.persistedQuery.sha256Hash must be the document's sha256 as 64 "
                           "hexadecimal digits", "extensions.persistedQuery.sha256Hash")
        return digest.lower()

    def text_for(self, digest: str, query: object) -> str:
        """The document text to run: the one sent (checked against `digest`) or the one known
        under `digest`; PersistedQueryError when neither."""
        if query is not None:
            if not isinstance(query, str):
                raise _invalid("query must be a string", "query")
            if hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest() != digest:
                raise PersistedQueryError("PERSISTED_QUERY_HASH_MISMATCH",
                                          "the query's sha256 is not extensions.persistedQuery.sha256Hash; "
                                          "nothing was run", 400, "extensions.persistedQuery.sha256Hash")
            return query
        text = self._texts.get(digest)
        if text is None:
            raise PersistedQueryError("PERSISTED_QUERY_NOT_FOUND",
                                      "PersistedQueryNotFound: this server does not know the document with "
                                      "this sha256; send it once with its text", 200)
        self._texts.move_to_end(digest)
        return text

    def remember(self, digest: str, text: str) -> None:
        """Keep `text` under `digest` (the caller checked that it hashes to it and validates)."""
        self._texts[digest] = text
        self._texts.move_to_end(digest)
        if len(self._texts) > self._maxsize:
            self._texts.popitem(last=False)

    def __contains__(self, digest: str) -> bool:
        return digest in self._texts
