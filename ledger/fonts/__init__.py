"""The font files the project ships (README.md beside this file: source, licence, what was cut)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

__all__ = ["LEDGER_KAI"]

# LXGW WenKai cut down to GB 2312, Latin-1 and punctuation (SIL OFL 1.1): statement PDFs embed
# it, the explorer page serves it.
LEDGER_KAI: Final = Path(__file__).parent / "LedgerKai-Regular.ttf"
