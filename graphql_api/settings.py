"""The API's settings: every field of `Limits` (graphql_api/context.py), each from its variable
`LEDGER_<NAME>` (e.g. `LEDGER_POOL_SIZE_MAX`) or the settings file's `<name>`, and where
`ledger-core serve` listens. The model is made from `Limits` itself, so a limit added there is a
setting at once; the mechanism (environment, file, sources, errors) is ledger/settings.py's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from pydantic import Field, create_model, model_validator

from graphql_api.context import Limits
from ledger.settings import LedgerSettings, load

__all__ = ["ApiSettings", "SERVE_WORKERS_MAX", "LIMIT_MAX", "configured_limits", "api_settings"]

SERVE_WORKERS_MAX = 16


class _ApiSettingsBase(LedgerSettings):
    # A host name or address: no spaces nor control characters (a NUL would reach the resolver).
    serve_host: str = Field("127.0.0.1", validation_alias="LEDGER_SERVE_HOST", min_length=1, max_length=253,
                            pattern=r"^[^\s\x00-\x1f\x7f]+$")
    serve_port: int = Field(8000, validation_alias="LEDGER_SERVE_PORT", ge=1, le=65535)
    serve_workers: int = Field(1, validation_alias="LEDGER_SERVE_WORKERS", ge=1, le=SERVE_WORKERS_MAX)

    @model_validator(mode="after")
    def _consistent(self) -> _ApiSettingsBase:
        values = cast(Any, self)
        if values.pool_size_min > values.pool_size_max:
            raise ValueError(f"pool_size_min ({values.pool_size_min}) exceeds pool_size_max ({values.pool_size_max})")
        if values.page_size_default > values.page_size_max:
            raise ValueError(f"page_size_default ({values.page_size_default}) exceeds page_size_max "
                             f"({values.page_size_max})")
        if values.batch_body_bytes_max < values.body_bytes_max:
            raise ValueError(f"batch_body_bytes_max ({values.batch_body_bytes_max}) is below body_bytes_max "
                             f"({values.body_bytes_max})")
        return self


# PostgreSQL takes a timeout in milliseconds up to this; no count or size comes near it, and a
# larger value would pass here and fail later, on every connection or request.
LIMIT_MAX = 2**31 - 1


def _limit_fields() -> dict[str, Any]:
    # Every limit is a count, a size or a duration: at least 1, at most LIMIT_MAX.
    return {f.name: (int, Field(f.default, validation_alias=f"LEDGER_{f.name.upper()}", ge=1, le=LIMIT_MAX))
            for f in dataclasses.fields(Limits)}


ApiSettings: type[_ApiSettingsBase] = create_model(
    "ApiSettings", __base__=_ApiSettingsBase, __doc__="Every API limit and where the server listens.",
    **_limit_fields())


def api_settings() -> Any:
    """The API's settings in force (SettingsInvalid, naming the setting, if one is not valid)."""
    return load(ApiSettings)[0]


def configured_limits() -> Limits:
    """`Limits` as configured: the environment, else the settings file, else the defaults."""
    settings = api_settings()
    return Limits(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(Limits)})
