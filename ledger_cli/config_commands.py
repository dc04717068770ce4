"""`ledger-core config`: the settings in force, where each came from, secrets masked; and the
start-up check every command runs first (ledger/settings.py, graphql_api/settings.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from graphql_api.settings import ApiSettings
from ledger.settings import (
    CONFIG_FILE_ENV,
    CoreSettings,
    LedgerSettings,
    Setting,
    SettingsInvalid,
    config_file,
    file_values,
    load,
)

__all__ = ["register", "MODELS", "use_config_file", "settings_in_force"]

# Every area's settings: what the file may name and what `config` prints.
MODELS: list[type[LedgerSettings]] = [CoreSettings, ApiSettings]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="print the settings in force and where each came from")
    add_config_option(parser)
    parser.set_defaults(run=_config)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: given after the command it counts, not given it leaves the one before the command.
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="FILE",
                        help=f"settings file (TOML; sets {CONFIG_FILE_ENV}, so server workers read it too)")


def use_config_file(path: Path) -> None:
    """Read settings from `path` from now on (this process and the ones it starts)."""
    if not path.is_file():
        raise SettingsInvalid(f"the settings file {path} does not exist", file=str(path))
    os.environ[CONFIG_FILE_ENV] = str(path.resolve())


def settings_in_force() -> list[Setting]:
    """Every setting, checked; SettingsInvalid naming the first that is not valid, or a key of
    the file that names no setting (a typo would otherwise be ignored)."""
    values = file_values()
    known = {name for model in MODELS for name in model.model_fields}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SettingsInvalid(f"the settings file {config_file()} names no setting {', '.join(unknown)} "
                              "(see `ledger-core config` for their names)", keys=unknown)
    return [setting for model in MODELS for setting in load(model, file=values)[1]]


def _config(args: argparse.Namespace) -> int:
    settings = settings_in_force()
    named = config_file()
    print(f"settings file: {named} ({CONFIG_FILE_ENV})" if named else f"settings file: none ({CONFIG_FILE_ENV} not set)")
    width = max(len(s.name) for s in settings)
    values = [s.shown() for s in settings]
    value_width = max(24, *(len(v) for v in values))
    print(f"{'setting':<{width}}  {'value':<{value_width}}  {'source':<7}  variable")
    for setting, value in zip(settings, values, strict=True):
        print(f"{setting.name:<{width}}  {value:<{value_width}}  {setting.source:<7}  {setting.variable}")
    return 0
