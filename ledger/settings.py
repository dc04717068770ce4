"""Settings: from the environment, a TOML file, or their defaults, in that order of precedence.

Each area declares its settings as a pydantic-settings model (the core's are `CoreSettings`
below; the API's are in graphql_api/settings.py), one field per setting, each with its own
environment variable. The file is named by `LEDGER_CONFIG_FILE` (or `ledger-core --config FILE`,
which sets it, so server worker processes read the same file); it is flat TOML whose keys are
the settings' names:

    business_time_zone = "Europe/London"
    pool_size_max = 16

`load(model)` validates every setting of a model and says where each value came from;
a bad value is a `SettingsInvalid` naming the setting, its variable and its source. The command
line checks every model at start-up (`ledger-core config` shows them). The core reads its own
settings where it uses them with `current(name)`: the variable if set, else the file, else the
default, so a variable set later in a process (a test, an embedding program) is obeyed at once.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ledger.errors import LedgerError

__all__ = [
    "CONFIG_FILE_ENV",
    "SettingsInvalid",
    "Setting",
    "LedgerSettings",
    "CoreSettings",
    "config_file",
    "file_values",
    "load",
    "current",
    "masked",
]

CONFIG_FILE_ENV = "LEDGER_CONFIG_FILE"
Source = Literal["default", "env", "file"]


class SettingsInvalid(LedgerError):
    """A setting's value (from the environment or the file) is not one the ledger can run with,
    or the file itself cannot be read."""

    code = "SETTINGS_INVALID"


@dataclass(frozen=True)
class Setting:
    """One setting in force: its name, environment variable, value, and where the value came from."""

    name: str
    variable: str
    value: Any
    source: Source
    secret: bool

    def shown(self) -> str:
        """The value as `ledger-core config` prints it: secrets masked."""
        if self.value is None:
            return "(not set)"
        return masked(self.name, str(self.value)) if self.secret else str(self.value)


class LedgerSettings(BaseSettings):
    """Base of every area's settings: each field reads the environment variable that is its
    `validation_alias`, then the file's value, which `load` passes in by the field's name."""

    model_config = SettingsConfigDict(extra="forbid", env_ignore_empty=True, validate_default=True,
                                      case_sensitive=True, populate_by_name=True)
    secrets: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment first, then the file (passed as init arguments by `load`).
        return env_settings, init_settings

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        # TOML's `true` would pass as the number 1 (pydantic takes a bool for an int); no setting is
        # a flag, so a boolean is a mistake to name, not a value to guess.
        if isinstance(value, bool):
            raise ValueError(f"must be a number or a text, not {str(value).lower()}")
        return value

    @classmethod
    def variable(cls, name: str) -> str:
        alias = cls.model_fields[name].validation_alias
        return alias if isinstance(alias, str) else ""


class CoreSettings(LedgerSettings):
    """What the ledger core reads: where the database is, the business day's zone, the cursor key."""

    secrets: ClassVar[frozenset[str]] = frozenset({"database_url", "cursor_key"})

    # None: the embedded PostgreSQL (ledger/database.py).
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    business_time_zone: str = Field("Asia/Shanghai", validation_alias="LEDGER_BUSINESS_TIME_ZONE")
    # None: the random key the database keeps (ledger/cursor_keys.py).
    cursor_key: str | None = Field(None, validation_alias="LEDGER_CURSOR_KEY")

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        # libpq reads a C string: a NUL would cut the URL short and connect somewhere else. The
        # driver's own message may quote the password, so the reason is told without it.
        if value is not None:
            if any(ord(c) < 0x20 or c == "\x7f" for c in value):
                raise ValueError("holds a control character (a NUL, a line break...): not a connection URL")
            try:
                conninfo_to_dict(value)
            except psycopg.ProgrammingError:
                raise ValueError("is not a PostgreSQL connection URL (postgresql://user@host:port/dbname) "
                                 "nor a conninfo string (host=... dbname=...)") from None
        return value

    @field_validator("business_time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from ledger.calendar import time_zone  # the calendar reads this module: imported late

        try:
            time_zone(value.strip(), field="business_time_zone")
        except LedgerError as exc:
            raise ValueError(exc.message) from None
        return value.strip()

    @field_validator("cursor_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        from ledger.cursor_keys import parse_key

        if value is not None:
            try:
                parse_key(value)
            except LedgerError as exc:
                raise ValueError(exc.message) from None
        return value


def config_file() -> Path | None:
    named = os.environ.get(CONFIG_FILE_ENV, "").strip()
    return Path(named) if named else None


_file_cache: dict[tuple[str, int], dict[str, Any]] = {}


def file_values(path: Path | None = None) -> dict[str, Any]:
    """The settings in the file (`LEDGER_CONFIG_FILE` unless given), read again when it changes."""
    path = path if path is not None else config_file()
    if path is None:
        return {}
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
    except OSError as exc:
        raise SettingsInvalid(f"the settings file {path} ({CONFIG_FILE_ENV}) cannot be read: {exc.strerror}",
                              file=str(path)) from None
    found = _file_cache.get(stamp)
    if found is None:
        try:
            found = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise SettingsInvalid(f"the settings file {path} is not TOML: {exc}", file=str(path)) from None
        _file_cache.clear()
        _file_cache[stamp] = found
    return found


def load(model: type[LedgerSettings], *, file: Mapping[str, Any] | None = None) -> tuple[LedgerSettings, list[Setting]]:
    """The model's settings in force and where each came from; SettingsInvalid naming the first
    setting that is not valid. `file`: the file's values (default: the settings file's; keys of
    other models' settings are left to them)."""
    values = file_values() if file is None else file
    own = {name: values[name] for name in model.model_fields if name in values}
    sources: dict[str, Source] = {}
    for name in model.model_fields:
        from_env = os.environ.get(model.variable(name), "") != ""
        sources[name] = "env" if from_env else "file" if name in own else "default"
    try:
        settings = model(**own)
    except PydanticValidationError as exc:
        raise _invalid(model, exc, sources) from None
    return settings, [Setting(name, model.variable(name), getattr(settings, name), sources[name],
                              name in model.secrets) for name in model.model_fields]


def _invalid(model: type[LedgerSettings], exc: PydanticValidationError, sources: Mapping[str, Source]) -> SettingsInvalid:
    error = exc.errors()[0]
    location = [str(part) for part in error.get("loc", ())]
    reason = re.sub(r"^Value error, ", "", str(error.get("msg", "invalid")))
    if not location:  # a rule across settings: its message names them
        return SettingsInvalid(f"settings are inconsistent: {reason}")
    name = next((n for n in model.model_fields if location and location[0] in (n, model.variable(n))),
                location[0] if location else "?")
    variable = model.variable(name) if name in model.model_fields else ""
    source = sources.get(name, "default")
    shows_input = name in model.secrets or error.get("type") == "value_error"  # a validator's message shows it
    given = "" if shows_input else f", got {str(error.get('input'))[:80]!r}"
    where = {"env": f"from the environment variable {variable}", "file": f"from the settings file {config_file()}",
             "default": "its default"}[source]
    return SettingsInvalid(f"setting {name} ({where}) is invalid: {reason}{given}", setting=name, variable=variable,
                           source=source)


def current(name: str) -> Any:
    """A core setting as it stands now: its variable if set, else the file's value, else the default
    (checked at start-up by `load`; the place that uses it checks it again)."""
    field = CoreSettings.model_fields[name]
    from_env = os.environ.get(CoreSettings.variable(name), "")
    if from_env:
        return from_env
    values = file_values()
    if name in values:
        return values[name]
    return field.default


_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def masked(name: str, value: str) -> str:
    """A secret as it may be shown: a URL or conninfo with its password starred, a key wholly."""
    if name != "database_url":
        return "********"
    return _KEYWORD_PASSWORD.sub(r"\1********", _URL_PASSWORD.sub(r"\1********@", value))
