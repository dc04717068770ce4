"""Reading a PDF back as a person's viewer would: poppler's `pdftotext` and `pdfinfo` (Debian's
poppler-utils; `./dev test` installs it). Without them the PDF tests fail, never skip."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} is not installed: apt-get install -y poppler-utils (./dev test does this)")
    return path


def _run(tool: str, data: bytes, *args: str, out: tuple[str, ...] = ()) -> str:
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "statement.pdf"
        source.write_bytes(data)
        done = subprocess.run([_tool(tool), *args, str(source), *out], capture_output=True, timeout=60)
    assert done.returncode == 0, f"{tool} could not read the PDF: {done.stderr.decode(errors='replace')}"
    assert b"Error" not in done.stderr, done.stderr.decode(errors="replace")
    return done.stdout.decode("utf-8")


def pdf_text(data: bytes) -> str:
    """The text of every page, laid out as on the page."""
    return _run("pdftotext", data, "-layout", "-enc", "UTF-8", out=("-",))


def pdf_info(data: bytes) -> dict[str, str]:
    """pdfinfo's fields (Pages, Title, Producer, ...)."""
    lines = _run("pdfinfo", data, "-enc", "UTF-8").splitlines()
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}


def pdf_fonts(data: bytes) -> str:
    """pdffonts' table: each font's name, type, whether embedded and subset."""
    return _run("pdffonts", data)
