"""Makes ledger/fonts/LedgerKai-Regular.ttf from LXGW WenKai (SIL OFL 1.1): the characters of
GB 2312 plus ASCII, Latin-1 and the punctuation a statement uses, renamed because "LXGW" and
"霞鹜" are Reserved Font Names of the original (see ledger/fonts/README.md).

    python tools/fonts/subset_cjk.py LXGWWenKai-Regular.ttf ledger/fonts/LedgerKai-Regular.ttf
"""

from __future__ import annotations

import sys

from fontTools import subset
from fontTools.ttLib import TTFont

FAMILY = "Ledger Kai"
# Name table records (platform 3, encoding 1, US English) of the renamed font.
NAMES = {
    0: "Copyright 2021-2022 lxgw. Ledger Kai is a subset of LXGW WenKai 1.250 (SIL OFL 1.1).",
    1: FAMILY, 2: "Regular", 3: "LedgerKai-Regular-1.250-gb2312", 4: f"{FAMILY} Regular",
    5: "Version 1.250; subset to GB 2312", 6: "LedgerKai-Regular",
    13: "SIL Open Font License 1.1", 14: "https://openfontlicense.org",
}


def code_points() -> set[int]:
    points = set(range(0x20, 0x7F)) | set(range(0xA0, 0x100)) | set(range(0x2000, 0x206F))
    points |= set(range(0x3000, 0x3040)) | set(range(0xFF00, 0xFFF0)) | {0x20AC}
    for lead in range(0xA1, 0xF8):          # every two-byte GB 2312 code: symbols and hanzi
        for trail in range(0xA1, 0xFF):
            try:
                points.add(ord(bytes([lead, trail]).decode("gb2312")))
            except UnicodeDecodeError:
                continue
    return points


def main(source: str, target: str) -> None:
    options = subset.Options()
    options.layout_features = ["kern", "vert", "vrt2", "locl"]
    options.name_IDs = []            # every upstream name goes; NAMES replaces them
    options.hinting = False
    options.notdef_outline = True    # a missing character shows as a box, not as nothing
    options.glyph_names = False
    font = TTFont(source)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=code_points())
    subsetter.subset(font)
    for name_id, text in NAMES.items():
        font["name"].setName(text, name_id, 3, 1, 0x409)
    font.save(target)
    print(f"{target}: {len(font.getGlyphOrder())} glyphs")


if __name__ == "__main__":
    main(*sys.argv[1:3])
