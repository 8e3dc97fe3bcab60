"""Sample documents shipped with the package, for ``python -m qwen_ocr.demo`` and for trying things out offline.

* ``delivery-note.jpg``: a one-page greyscale scan (150 dpi, slightly turned, grainy) of a delivery note.
* ``report.pdf``: a two-page scanned report: page images only, no text layer.

Each comes with its known text (``delivery-note.txt``, ``report.txt``; the PDF's pages are separated by a form feed,
``"\\f"``), to measure how well a reading matches. They were made for this project by
``python -m qwen_ocr.samples._generate`` (text rendered with Pillow's bundled Aileron font) and are under the
project's license.

Example::

    from qwen_ocr.samples import SAMPLE_SCAN, known_text, read_sample
    from qwen_ocr.local import get_engine

    result = get_engine().ocr(read_sample(SAMPLE_SCAN))
    known_text(SAMPLE_SCAN)          # what the page says
"""

from __future__ import annotations

import sys
from importlib.resources import files
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

__all__ = [
    "PDF_PAGE_SEPARATOR",
    "SAMPLES",
    "SAMPLE_PDF",
    "SAMPLE_SCAN",
    "known_text",
    "known_text_name",
    "read_sample",
    "sample_file",
]

SAMPLE_SCAN = "delivery-note.jpg"
"""A one-page scan (JPEG)."""
SAMPLE_PDF = "report.pdf"
"""A two-page scanned PDF without a text layer."""
SAMPLES = (SAMPLE_SCAN, SAMPLE_PDF)
PDF_PAGE_SEPARATOR = "\f"
"""Separates the pages of a multi-page sample's known text."""


def sample_file(name: str) -> Traversable:
    """The bundled file ``name`` (works from a wheel or a zip too); see :data:`SAMPLES`.

    >>> sample_file(SAMPLE_SCAN).name
    'delivery-note.jpg'
    """
    if name not in SAMPLES and name not in {known_text_name(s) for s in SAMPLES}:
        raise ValueError(f"no sample named {name!r}; the samples are {', '.join(SAMPLES)}")
    return files(__name__).joinpath(name)


def read_sample(name: str) -> bytes:
    """The bytes of a bundled sample.

    >>> read_sample(SAMPLE_PDF)[:5]
    b'%PDF-'
    """
    return sample_file(name).read_bytes()


def known_text_name(name: str) -> str:
    """The file holding a sample's known text: the sample's name with ``.txt`` for its suffix.

    >>> known_text_name("report.pdf")
    'report.txt'
    """
    return str(PurePosixPath(name).with_suffix(".txt"))


def known_text(name: str) -> str:
    """What a sample says, line by line (pages separated by :data:`PDF_PAGE_SEPARATOR`).

    >>> known_text(SAMPLE_SCAN).splitlines()[0]
    'NORTHWIND TRADING COMPANY'
    """
    return sample_file(known_text_name(name)).read_text(encoding="utf-8")
