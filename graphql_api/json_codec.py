"""The JSON encoder of HTTP responses: orjson, several times faster than the standard library's
for a GraphQL result, with the standard library as the fallback for what orjson refuses (an
integer past 64 bits). WebSocket messages keep strawberry's text encoder: graphql-transport-ws
clients expect text frames."""

from __future__ import annotations

import json

import orjson

__all__ = ["encode_json"]


def encode_json(data: object) -> bytes:
    try:
        return orjson.dumps(data)
    except TypeError:
        return json.dumps(data, separators=(",", ":")).encode()
