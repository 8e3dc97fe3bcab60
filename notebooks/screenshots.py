"""Screenshots of the Jupyter view of ``OCRResult``, taken by headless Chromium at notebook width.

    .venv/bin/python notebooks/screenshots.py            # notebooks/view_page.png, view_table.png, view_fields.png
    .venv/bin/python notebooks/screenshots.py --width 700

Three results are read offline (the local engine for the page with its boxes, the loopback emulator's recorded
answers for the table and the fields, as in ``01_quickstart.ipynb``). The HTML each one shows in a notebook
(``result.to_html()``) is put in a page that imitates a JupyterLab output area, including the rules of JupyterLab's
stylesheet that matter to it (every cell of HTML output right-aligned, tables centred, rows striped), and Chromium
takes a picture of it, ``--width`` CSS pixels wide (900 by default), trimmed below the content.

Not part of ``make test``: it needs a browser. Chromium or Chrome is looked for as ``$CHROME``, then ``chromium``,
``chromium-browser``, ``google-chrome`` and ``google-chrome-stable`` on the ``PATH``; without one the script says so
and writes nothing (exit code 0). Nothing here talks to the network.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# What a JupyterLab 4 output area does to HTML output, in our own words: the selectors and properties that change
# how a result looks (the real stylesheet has more, for colours and fonts through CSS variables).
JUPYTERLAB_LIKE = """
body { margin: 0; background: #fff; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       font-size: 13px; color: rgba(0, 0, 0, 0.87); }
.jp-OutputArea-output { padding: 8px 12px; overflow-x: auto; }
.jp-RenderedHTMLCommon table { border-collapse: collapse; border-spacing: 0; border: none; font-size: 12px;
                               table-layout: fixed; margin-left: auto; margin-right: auto; margin-bottom: 1em; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th, .jp-RenderedHTMLCommon tr {
    vertical-align: middle; padding: 0.5em; line-height: normal; white-space: normal; max-width: none; border: none; }
:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td, :not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon th,
:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon tr { text-align: right; }
.jp-RenderedHTMLCommon th { font-weight: bold; }
.jp-RenderedHTMLCommon tbody tr:nth-child(even) { background: #f5f5f5; }
.jp-RenderedHTMLCommon img { max-width: 100%; }
.jp-RenderedHTMLCommon pre { font-size: 12px; }
"""


def find_browser() -> str | None:
    """The Chromium or Chrome to use, or ``None``."""
    given = os.environ.get("CHROME")
    if given:
        return shutil.which(given) or (given if Path(given).is_file() else None)
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def views() -> dict[str, str]:
    """The HTML of the three views: ``page`` (text lines with their boxes), ``table``, ``fields``."""
    sys.path.insert(0, str(HERE))
    from helpers import stand_in, table_picture

    from qwen_ocr import QwenOCR
    from qwen_ocr.samples import SAMPLE_SCAN, read_sample
    from qwen_ocr.testing import Emulator

    with Emulator() as emulator:
        client = QwenOCR(api_key="offline", base_url=emulator.base_url)
        table = client.ocr(table_picture(), task="table_parsing")
        fields = client.ocr(
            stand_in("key_information_extraction"),
            schema={"Delivery note No.": "", "Date": "", "Total due": ""},
        )
        try:
            page = QwenOCR(provider="local").ocr(read_sample(SAMPLE_SCAN), task="advanced_recognition")
        except ImportError:  # no local engine: the emulator's recorded lines, on a card that says so
            page = client.ocr(stand_in("advanced_recognition"), task="advanced_recognition")
    return {"page": page.to_html(), "table": table.to_html(), "fields": fields.to_html()}


def page_html(fragment: str, width: int) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<style>{JUPYTERLAB_LIKE} body {{ width: {width}px; }}</style></head><body>"
        f'<div class="jp-OutputArea-output jp-RenderedHTMLCommon jp-RenderedHTML">{fragment}</div>'
        "</body></html>"
    )


def screenshot(browser: str, html: str, target: Path, width: int, height: int = 2400) -> None:
    """A picture of ``html`` ``width`` px wide, trimmed below the content (white rows at the bottom)."""
    from PIL import Image, ImageChops

    with tempfile.TemporaryDirectory() as scratch:
        page = Path(scratch) / "view.html"
        page.write_text(html, encoding="utf-8")
        shot = Path(scratch) / "shot.png"
        command = [
            browser, "--headless=new", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
            "--force-device-scale-factor=1", f"--user-data-dir={scratch}/profile", "--no-first-run",
            f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri(),
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, timeout=120)  # noqa: S603 (the browser found above)
        with Image.open(shot) as picture:
            full = picture.convert("RGB")
    box = ImageChops.difference(full, Image.new("RGB", full.size, "white")).getbbox()
    bottom = min(full.height, (box[3] if box else full.height) + 12)
    trimmed = full.crop((0, 0, full.width, bottom))
    trimmed.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=900, help="the notebook's width in CSS pixels (default 900)")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the pictures (default notebooks/)")
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print(
            "screenshots: skipped: no Chromium or Chrome found (looked for $CHROME, then "
            f"{', '.join(BROWSERS)} on the PATH). Install one (Debian/Ubuntu: apt-get install chromium) or set "
            "CHROME=/path/to/chrome. Nothing was written."
        )
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, fragment in views().items():
        target = args.out / f"view_{name}.png"
        screenshot(browser, page_html(fragment, args.width), target, args.width)
        print(f"wrote {target.relative_to(HERE.parent) if target.is_relative_to(HERE.parent) else target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
