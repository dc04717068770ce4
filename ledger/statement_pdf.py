"""A statement as a PDF a person reads: A4 landscape, fpdf2, one embedded font.

Every piece of text is set in Ledger Kai (ledger/fonts/README.md: LXGW WenKai cut down to GB 2312,
Latin-1 and punctuation, SIL OFL), of which fpdf2 embeds only the glyphs the statement uses, so an
account named 张敏的钱包 and a description 充值 print as written, and a viewer's text search
and copy find them (the font carries its Unicode map). Amounts are in currency units with
thousands separators (`1,234,567.89`); times are wall-clock times in the business time zone
(ledger/calendar.py), which the header names. Each line shows the transaction's kind and
description; a long description wraps onto more lines of its row.

The bytes depend only on the statement: the document's creation date is the statement's
`known_at`, so cutting again with the same `known_at` gives the same file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos

from ledger import calendar
from ledger.errors import ValidationError
from ledger.fonts import LEDGER_KAI
from ledger.money import grouped_units
from ledger.statement_export import Statement

__all__ = ["FONT_FILE", "FONT_FAMILY", "statement_pdf", "business_time", "pdf_lines_max"]

FONT_FILE: Final = LEDGER_KAI
FONT_FAMILY: Final = "LedgerKai"

# A PDF is made at about 2,000 lines a second (docs/benchmarks.md), a hundred times slower than
# the CSV: a longer statement is refused as a PDF (the CSV and JSON hold up to statement_lines_max).
pdf_lines_max = 20_000
_PAGES_ALIAS = "{total-pages}"  # wide enough for any page count a PDF may reach
_FONT_PT = 8.5
_LINE_MM = 4.2
_MARGIN_MM = 12
# Column (heading, width in mm, alignment): 273 mm between the margins of A4 landscape. An amount
# column holds the widest bigint, "-92,233,720,368,547,758.08".
_COLUMNS: Final = (("Effective", 33, "L"), ("Tx", 17, "R"), ("Kind", 32, "L"), ("Description", 65, "L"),
                   ("Debit", 41, "R"), ("Credit", 41, "R"), ("Balance", 44, "R"))


_PAD_MM = 1.0  # fpdf2's cell margin at this size, so the headings and the rows line up
_TABLE_MM = sum(width for _, width, _ in _COLUMNS)


def business_time(moment: datetime) -> str:
    """An instant as wall-clock time in the business time zone: `2026-10-02 20:00:00`."""
    return moment.astimezone(calendar.business_time_zone()).strftime("%Y-%m-%d %H:%M:%S")


class _StatementPDF(FPDF):
    def __init__(self, title: str, heading: str, intro: list[str]) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.running_title, self.heading, self.intro = title, heading, intro

    def header(self) -> None:
        # The first page opens with the account and the cut; later ones repeat the title.
        if self.page_no() == 1:
            self.set_font(FONT_FAMILY, size=13)
            self.cell(0, 7, self.heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_font(FONT_FAMILY, size=_FONT_PT)
            for text in self.intro:
                self.cell(0, _LINE_MM + 0.6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.ln(2)
        else:
            self.set_font(FONT_FAMILY, size=_FONT_PT)
            self.cell(0, _LINE_MM, self.running_title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_fill_color(232, 232, 232)
        for heading, width, align in _COLUMNS:
            self.cell(width, _LINE_MM + 1, heading, align=align, fill=True)
        self.ln(_LINE_MM + 1.5)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(FONT_FAMILY, size=7)
        self.cell(0, _LINE_MM, f"Page {self.page_no()} of {_PAGES_ALIAS}", align="R")


def statement_pdf(statement: Statement) -> bytes:
    s, currency = statement, statement.account.currency
    if len(s.lines) > pdf_lines_max:
        raise ValidationError(f"a PDF statement holds at most {pdf_lines_max} lines and this period has "
                              f"{len(s.lines)}; cut it into shorter periods, or take the CSV", field="to")
    zone = calendar.business_time_zone()
    title = f"Statement of account {s.account.code}  {s.account.name}  ({currency})"
    pdf = _StatementPDF(title, f"{s.account.code}  {s.account.name}", [
        f"Statement of account, {currency}. Times are in {zone.key} (the business time zone).",
        f"Period {business_time(s.start)} to {business_time(s.end)} (end exclusive).",
        f"As known at {business_time(s.known_at)}, journal position {s.position}.",
    ])
    pdf.alias_nb_pages(_PAGES_ALIAS)
    pdf.add_font(FONT_FAMILY, "", str(FONT_FILE))
    pdf.set_margins(_MARGIN_MM, _MARGIN_MM, _MARGIN_MM)
    pdf.set_auto_page_break(True, margin=14)
    pdf.set_creation_date(s.known_at.astimezone(UTC))  # one form of the instant, one set of bytes
    pdf.set_title(title)
    pdf.set_creator("ledger-core")
    pdf.set_producer("ledger-core (fpdf2)")
    pdf.add_page()

    _row(pdf, ["Opening balance", "", "", "", "", "", grouped_units(s.opening, currency)])
    for line in s.lines:
        kind, description = s.kinds.get(line.transaction_id, ("", ""))
        amount = grouped_units(line.amount, currency)
        _row(pdf, [business_time(line.effective_at), str(line.transaction_id), kind, description,
                   amount if line.side == "debit" else "", amount if line.side == "credit" else "",
                   grouped_units(line.running_balance, currency)])
    _row(pdf, ["Closing balance", "", "", "", "", "", grouped_units(s.closing, currency)])
    _row(pdf, ["Totals", "", "", "", grouped_units(s.total_debits, currency),
               grouped_units(s.total_credits, currency), ""])
    if s.later_changes:
        pdf.ln(2)
        pdf.multi_cell(0, _LINE_MM, f"Recorded after the cut and effective before the period end: "
                                    f"{len(s.later_changes)} posting(s); closing if cut now: "
                                    f"{grouped_units(s.closing_now, currency)}.")
    return bytes(pdf.output())


def _row(pdf: _StatementPDF, cells: list[str]) -> None:
    """One table row; every cell wraps within its column, and the row is as tall as its tallest.
    Text goes down with text() at computed places: cell() and multi_cell() cost ten times as much
    per call, and a statement may have 100,000 lines."""
    wrapped = [_wrap(pdf, width, text) for (_, width, _), text in zip(_COLUMNS, cells, strict=True)]
    height = _LINE_MM * max(len(lines) for lines in wrapped)
    if pdf.will_page_break(height):
        pdf.add_page()
    top, left = pdf.get_y(), pdf.l_margin
    baseline = _LINE_MM * 0.72  # from a line's top to its text's baseline, at this size
    for (_, width, align), lines in zip(_COLUMNS, wrapped, strict=True):
        for number, text in enumerate(lines):
            if text:
                x = left + width - _PAD_MM - _width(pdf, text) if align == "R" else left + _PAD_MM
                pdf.text(x, top + number * _LINE_MM + baseline, text)
        left += width
    pdf.set_xy(pdf.l_margin, top + height)
    pdf.line(pdf.l_margin, top + height, pdf.l_margin + _TABLE_MM, top + height)


def _width(pdf: _StatementPDF, text: str) -> float:
    """get_string_width() without its per-call set-up (a third of the time of a long statement)."""
    font = pdf.current_font
    assert font is not None  # set before the first row
    return float(font.get_text_width(text, pdf.font_size_pt, None)[1]) / pdf.k


def _wrap(pdf: _StatementPDF, width: float, text: str) -> list[str]:
    if "\n" not in text and _width(pdf, text) <= width - 2 * _PAD_MM:
        return [text]  # most cells: one line, no line breaking needed
    lines = pdf.multi_cell(width, _LINE_MM, text, dry_run=True, output=MethodReturnValue.LINES)
    assert isinstance(lines, list)  # what output=LINES returns
    return [str(line) for line in lines] or [""]
