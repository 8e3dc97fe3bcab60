"""Rebuild the bundled samples: ``python -m qwen_ocr.samples._generate [folder]`` (default: this package's folder).

The samples are made here, not taken from anywhere: text is rendered with the font Pillow ships (Aileron, via
``ImageFont.load_default(size=...)``, Pillow >= 10.1 with FreeType), then made to look scanned: the page is turned by
a fraction of a degree, blurred a little, given a paper tone, grain and a few specks, and saved as a greyscale JPEG.
The PDF holds the page images only (Pillow's PDF writer), so it has no text layer and must be OCR'd.

Everything is seeded: running this again gives the same pixels with the same Pillow version.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from . import PDF_PAGE_SEPARATOR, SAMPLE_PDF, SAMPLE_SCAN, known_text_name

__all__ = ["DPI", "PDF_PAGES", "SCAN_LINES", "main", "render_page"]

DPI = 150
"""Resolution of the sample pages (pixels per inch)."""

# Each entry: (text, size in points, extra space above in points). "" is an empty line.
SCAN_LINES: list[tuple[str, float, float]] = [
    ("NORTHWIND TRADING COMPANY", 18, 0),
    ("Warehouse 4, 118 Harbour Road, Portsmouth PO1 3AX", 10, 2),
    ("Delivery note No. 2024-0457", 12, 14),
    ("Date: 14 March 2024", 11, 4),
    ("To: Green Valley Grocers, 22 Mill Lane, Winchester SO23 8AB", 11, 4),
    ("Dear Ms Patel,", 11, 14),
    ("Please find below the goods delivered today by our driver. Kindly check", 11, 6),
    ("each item against this note and sign the copy returned to us. Any damage", 11, 2),
    ("or missing item must be reported within 48 hours of delivery.", 11, 2),
    ("12 bottles of olive oil, 1 litre each, at 6.40 per bottle: 76.80", 11, 12),
    ("30 bags of basmati rice, 2 kg each, at 3.15 per bag: 94.50", 11, 2),
    ("8 boxes of green tea, 100 bags each, at 4.90 per box: 39.20", 11, 2),
    ("Total due within 30 days: 210.50", 12, 10),
    ("Thank you for your order. Our next delivery to Winchester is on", 11, 14),
    ("Thursday 21 March; orders placed by Tuesday noon will be on the van.", 11, 2),
    ("Yours sincerely,", 11, 14),
    ("Robert Lang, Dispatch Manager", 11, 24),
]

PDF_PAGES: list[list[tuple[str, float, float]]] = [
    [
        ("Quarterly Maintenance Report", 18, 0),
        ("Riverside Library, second quarter 2024", 11, 4),
        ("1. Summary", 13, 18),
        ("All three lifts passed their inspection on 4 April. The roof over the", 11, 6),
        ("reading room was repaired after the storm of 12 May, and the heating", 11, 2),
        ("system was serviced ahead of schedule. No accidents were reported.", 11, 2),
        ("2. Spending", 13, 16),
        ("The quarter's maintenance budget was 18,500 and we spent 16,240.", 11, 6),
        ("Roof repairs cost 7,900, lift inspections 2,150 and cleaning 6,190.", 11, 2),
        ("The remaining 2,260 is carried over to the next quarter.", 11, 2),
        ("3. Open issues", 13, 16),
        ("Two windows on the east side still leak in heavy rain. A contractor", 11, 6),
        ("will visit on 9 July to measure them for new frames.", 11, 2),
    ],
    [
        ("4. Energy use", 13, 0),
        ("Electricity use fell by 11 percent compared with the same quarter last", 11, 6),
        ("year, mostly thanks to the new lighting in the children's section.", 11, 2),
        ("Gas use was almost unchanged at 41,300 kWh.", 11, 2),
        ("5. Plans for the next quarter", 13, 16),
        ("Replace the carpet in the study area before the autumn term.", 11, 6),
        ("Paint the main staircase and the entrance hall.", 11, 2),
        ("Install two more bicycle racks next to the north entrance.", 11, 2),
        ("Prepared by Anna Berg, Facilities Officer, on 3 July 2024.", 11, 18),
    ],
]

_PAGE_WIDTH_IN = 8.5
_MARGIN_IN = 1.0


def _px(points: float) -> int:
    return round(points * DPI / 72)


def render_page(lines: list[tuple[str, float, float]], *, height_in: float, seed: int, tilt: float) -> Image.Image:
    """Render text lines on a page and age it to look like a greyscale scan."""
    width, height = round(_PAGE_WIDTH_IN * DPI), round(height_in * DPI)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    y = round(_MARGIN_IN * DPI * 0.8)
    for text, size, space in lines:
        y += _px(space)
        font = ImageFont.load_default(size=_px(size))
        draw.text((round(_MARGIN_IN * DPI), y), text, fill=28, font=font)
        y += round(_px(size) * 1.45)
    rng = random.Random(seed)  # noqa: S311 - reproducible grain and specks, not security
    page = page.rotate(tilt, resample=Image.Resampling.BICUBIC, fillcolor=255, expand=False)
    page = page.filter(ImageFilter.GaussianBlur(0.6))
    # Paper: a faint tone that darkens towards the bottom, grain, and a few dark specks.
    tone = Image.linear_gradient("L").resize((width, height)).point(lambda v: 244 - v // 40)
    page = ImageChops.darker(page, tone)
    grain = Image.frombytes("L", (width, height), rng.randbytes(width * height)).point(lambda v: v * 13 // 256)
    page = ImageChops.add(page, grain, offset=-6)
    specks = ImageDraw.Draw(page)
    for _ in range(60):
        x, yy = rng.randrange(width), rng.randrange(height)
        r = rng.choice((1, 1, 1, 2))
        specks.ellipse((x, yy, x + r, yy + r), fill=rng.randrange(60, 160))
    return page


def main(argv: list[str] | None = None) -> None:
    """Write the sample scan, the sample PDF and their known texts into a folder."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(__file__).resolve().parent
    scan = render_page(SCAN_LINES, height_in=8.0, seed=1, tilt=0.7)
    scan.save(folder / SAMPLE_SCAN, quality=70, optimize=True)
    (folder / known_text_name(SAMPLE_SCAN)).write_text(_known(SCAN_LINES), encoding="utf-8")
    pages = [
        render_page(lines, height_in=7.0, seed=10 + i, tilt=tilt)
        for i, (lines, tilt) in enumerate(zip(PDF_PAGES, (-0.5, 0.4), strict=True))
    ]
    fixed = time.gmtime(1720008000)  # 3 July 2024, 12:00 UTC: fixed dates give reproducible bytes
    pages[0].save(
        folder / SAMPLE_PDF,
        save_all=True,
        append_images=pages[1:],
        resolution=DPI,
        quality=60,
        title="Quarterly Maintenance Report (sample)",
        creationDate=fixed,
        modDate=fixed,
    )
    known = PDF_PAGE_SEPARATOR.join(_known(lines) for lines in PDF_PAGES)
    (folder / known_text_name(SAMPLE_PDF)).write_text(known, encoding="utf-8")
    for name in (SAMPLE_SCAN, SAMPLE_PDF):
        print(f"{folder / name}: {(folder / name).stat().st_size:,} bytes")


def _known(lines: list[tuple[str, float, float]]) -> str:
    return "".join(text + "\n" for text, _, _ in lines)


if __name__ == "__main__":
    main()
