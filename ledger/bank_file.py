"""Bank statement files as banks write them: CSV in UTF-8 or GBK, numbers as accountants write them.

The file (at most `file_bytes_max` bytes and `bank_lines_max` lines) has a header row naming its
columns, in any order:

    date,reference,amount[,description]

- encoding: UTF-8 (with or without a byte-order mark) when the bytes are valid UTF-8, else
  GB18030 (a superset of GBK, what Chinese banks' systems export); the one used is reported;
  a NUL byte anywhere refuses the file (UTF-16 is not read);
- lines end in CRLF or LF; only those end a line (a U+2028 inside a field is text);
- date: the bank's booking date, ISO `YYYY-MM-DD`;
- reference: the bank's reference for the line (may be empty);
- amount: signed, in currency units with at most the currency's decimals: `1234.56`, `-20`,
  `+1.00`, `2,500.00` (thousands separators) and `(1.00)` (negative, as accountants write it);
  positive when the account's balance goes up. A column `amount_minor` (integer minor units,
  optionally signed) may be given instead of `amount`.

A bad file is refused whole: BankFileInvalid names the first bad line.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ledger.errors import LedgerError
from ledger.instants import instant_max, instant_min
from ledger.money import amount_max, minor_digits

__all__ = ["BankFileInvalid", "BankLine", "BankFile", "read_bank_file", "parse_bank_csv", "file_bytes_max",
           "bank_lines_max", "reference_length_max", "description_length_max", "encodings"]

file_bytes_max = 10 * 1024 * 1024
bank_lines_max = 50_000
reference_length_max = 200
description_length_max = 1000
encodings = ("utf-8", "gb18030")

# A number: an optional sign, digits (in groups of three when separated by commas), decimals.
_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
_MINOR = re.compile(r"[+-]?[0-9]{1,19}")  # longer does not fit in 64 bits (nor may int() take it)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_COLUMNS_HELP = "date, reference, amount (or amount_minor) and optionally description"


class BankFileInvalid(LedgerError):
    """The bank statement file cannot be read; `line` is its 1-based line number (0: the file)."""

    code = "BANK_FILE_INVALID"

    def __init__(self, message: str, *, line: int) -> None:
        super().__init__(f"line {line}: {message}" if line else message, line=line)
        self.line = line


@dataclass(frozen=True)
class BankLine:
    line_no: int
    date: date
    reference: str
    amount: int            # signed minor units
    description: str


@dataclass(frozen=True)
class BankFile:
    encoding: str          # one of `encodings`
    lines: list[BankLine]


def _line_of(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


def _decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 when valid, else GB18030."""
    if len(data) > file_bytes_max:
        raise BankFileInvalid(f"the file has {len(data):,} bytes; at most {file_bytes_max:,} are accepted", line=0)
    # No text of a bank file holds a NUL, and the database cannot store one; a file full of them
    # is UTF-16 (ASCII text in UTF-16 without a byte-order mark is valid UTF-8, NULs and all).
    nul = data.find(b"\x00")
    if nul >= 0:
        raise BankFileInvalid("holds a NUL byte (is it UTF-16?); save the file as UTF-8",
                              line=_line_of(data, nul))
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as utf8:
        try:
            return data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError as gb:
            # A file with valid UTF-8 text before the bad byte was meant as UTF-8; otherwise as GBK.
            meant_utf8 = any(byte >= 0x80 for byte in data[:utf8.start])
            offset = utf8.start if meant_utf8 else gb.start
            raise BankFileInvalid(f"not UTF-8 nor GBK/GB18030 (byte 0x{data[offset]:02x}); "
                                  "save the file as UTF-8", line=_line_of(data, offset)) from None


def _header(row: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in row]
    unknown = [n for n in names if n not in ("date", "reference", "amount", "amount_minor", "description")]
    if unknown or len(set(names)) != len(names):
        raise BankFileInvalid(f"columns {row!r}: expected {_COLUMNS_HELP}, each once", line=1)
    if "date" not in names or "reference" not in names or ("amount" in names) == ("amount_minor" in names):
        raise BankFileInvalid(f"columns {row!r}: expected {_COLUMNS_HELP}", line=1)
    return {name: i for i, name in enumerate(names)}


def _units(value: str, currency: str, line: int) -> int:
    """Currency units as written by a bank, in signed minor units."""
    negative = value.startswith("(") and value.endswith(")")
    number = value[1:-1].strip() if negative else value
    if not _NUMBER.fullmatch(number) or (negative and number[:1] in "+-"):
        raise BankFileInvalid(f"amount {value!r} is not a number like 1234.56, -20, 2,500.00 or (1.00)", line=line)
    digits = minor_digits(currency)
    if "." in number and len(number.split(".")[1]) > digits:
        raise BankFileInvalid(f"amount {value!r} has more than {digits} decimals for {currency}", line=line)
    amount = int(Decimal(number.replace(",", "")).scaleb(digits))
    return -amount if negative else amount


def _amount(value: str, columns: dict[str, int], currency: str, line: int) -> int:
    value = value.strip()
    if "amount_minor" in columns:
        if not _MINOR.fullmatch(value):
            raise BankFileInvalid(f"amount_minor {value!r} is not a whole number of minor units", line=line)
        amount = int(value)
    else:
        amount = _units(value, currency, line)
    if amount == 0 or abs(amount) > amount_max:
        raise BankFileInvalid(f"amount {value!r} must be non-zero and fit in 64 bits", line=line)
    return amount


def _line(row: list[str], columns: dict[str, int], currency: str, line: int) -> BankLine:
    if len(row) != len(columns):
        raise BankFileInvalid(f"expected {len(columns)} fields ({', '.join(columns)}), got {len(row)}", line=line)
    day = row[columns["date"]].strip()
    try:
        parsed = date.fromisoformat(day) if _DATE.fullmatch(day) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise BankFileInvalid(f"date {day!r} is not an ISO date YYYY-MM-DD", line=line)
    if not instant_min.date() <= parsed < instant_max.date():  # the days around it must be instants too
        raise BankFileInvalid(f"date {day} lies outside {instant_min.date()} to {instant_max.date()}", line=line)
    reference = row[columns["reference"]].strip()
    if len(reference) > reference_length_max:
        raise BankFileInvalid(f"reference is longer than {reference_length_max} characters", line=line)
    description = row[columns["description"]].strip() if "description" in columns else ""
    if len(description) > description_length_max:
        raise BankFileInvalid(f"description is longer than {description_length_max} characters", line=line)
    amount = _amount(row[columns.get("amount", columns.get("amount_minor", 0))], columns, currency, line)
    return BankLine(line, parsed, reference, amount, description)


def read_bank_file(data: bytes, currency: str) -> BankFile:
    """The file's lines and the encoding it was read in; BankFileInvalid names the first bad line."""
    text, encoding = _decode(data)
    # Lines end at LF (a CR before it belongs to the ending): csv reads CRLF and LF, keeps line
    # breaks inside quoted fields, and counts the file's own lines in line_num.
    reader = csv.reader(io.StringIO(text, newline="\n"))
    lines: list[BankLine] = []
    columns: dict[str, int] | None = None
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if columns is None:
                columns = _header(row)
                continue
            if len(lines) >= bank_lines_max:
                raise BankFileInvalid(f"more than {bank_lines_max:,} lines; split the file", line=reader.line_num)
            lines.append(_line(row, columns, currency, reader.line_num))
    except csv.Error as exc:
        # csv's own words for a lone CR speak of Python's "universal-newline mode", no help to an operator.
        reason = ("a line ends in a lone carriage return (CR); save the file with LF or CRLF line ends"
                  if "new-line character seen in unquoted field" in str(exc) else str(exc))
        raise BankFileInvalid(f"not valid CSV: {reason}", line=reader.line_num) from None
    if columns is None:
        raise BankFileInvalid(f"the file is empty; expected a header row with {_COLUMNS_HELP}", line=0)
    if not lines:
        raise BankFileInvalid("the file has a header but no lines", line=0)
    return BankFile(encoding, lines)


def parse_bank_csv(data: bytes, currency: str) -> list[BankLine]:
    """The lines of a bank statement file (see `read_bank_file`)."""
    return read_bank_file(data, currency).lines
