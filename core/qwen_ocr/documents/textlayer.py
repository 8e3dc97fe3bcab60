"""Is a page's own text layer worth using instead of OCR? A heuristic you can read and test (pure).

A born-digital PDF page carries its text; reading it is free, instant and exact, so ``text_layer="auto"`` uses it
when it is *good* and sends the other pages to OCR. A text layer is not good when:

1. **there is too little of it** (under :data:`MIN_CHARS` visible characters): a heading over a figure, a page
   number, a form's field names; the page's real content is likely pixels, and OCR'ing it is cheap;
2. **it is an earlier OCR's output**: the page is dominated by one page-sized image (a scan) and most of its text
   is invisible (PDF text render mode 3, what OCRmyPDF, Acrobat and scanners write). Its quality is unknown and
   usually below the model's, so the page is OCR'd again;
3. **it does not read as text** (:func:`text_layer_quality` under :data:`GOOD_QUALITY`): broken font encodings
   give replacement characters (U+FFFD), private-use code points, control characters, mojibake (``Ã©``), or
   "words" made of symbols and mixed scripts.

:func:`text_layer_quality` scores text alone, from 0 (junk) to 1 (clean prose), as the product of three ratios:

* **clean**: ``1 - 5 * bad / chars``, where *bad* counts U+FFFD, private-use, unassigned, surrogate and control
  characters and mojibake pairs; 2 % bad characters cost 10 %, 20 % cost everything;
* **alphanumeric**: the share of non-space characters that are letters, marks or digits, over 0.6 (prose is
  about 0.95, tables 0.8; symbol noise is low);
* **words**: the share of characters (outside whitespace) that belong to word-like tokens: after trimming
  punctuation at both ends, letters and digits of one script (CJK ideographs, kana and hangul count as one
  script), with only ``- ' ’ . · _ / : @ & +`` inside (any punctuation inside CJK runs), and no more than one
  lower-to-upper case flip (``iPhone`` yes, ``tHiS`` no); or numbers (``1,000.5``, ``12:30``, ``50%``).

Example::

    >>> text_layer_quality("The quick brown fox jumps over the lazy dog.") > 0.9
    True
    >>> text_layer_quality("ﬁ¬§± ÃÂ \\ufffd\\ufffd |~ ^^ \\ue000") < 0.3
    True
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

from ..errors import InvalidArgumentError

__all__ = [
    "GOOD_QUALITY",
    "MIN_CHARS",
    "SCAN_IMAGE_COVERAGE",
    "TextLayerMode",
    "TextLayerVerdict",
    "check_text_layer_mode",
    "clean_text_layer",
    "judge_text_layer",
    "text_layer_quality",
]

TextLayerMode = Literal["auto", "never", "only"]
"""``"auto"``: use a page's text layer when it is good, OCR the rest; ``"never"``: OCR every page; ``"only"``:
never OCR, take whatever text layer a page has (pages without one give empty text)."""

MIN_CHARS = 32
"""Fewer non-space characters than this and the text layer is not used by ``"auto"``."""
GOOD_QUALITY = 0.6
"""A text layer whose :func:`text_layer_quality` is below this is not used by ``"auto"``."""
SCAN_IMAGE_COVERAGE = 0.85
"""A page whose largest image covers at least this share of its area is treated as a scan."""
INVISIBLE_SHARE = 0.5
"""On a scan, a text layer with at least this share of invisible text objects is an earlier OCR's output."""

_INNER_OK = frozenset("-'’.·_/:@&+")
_NUMBER = re.compile(r"^[+\-−±]?[$€£¥]?\d[\d.,:/%‰\-–]*[%‰]?$")
_MOJIBAKE = re.compile(r"[ÃÂ][\u0080-\u00bf]|â€[\u0080-\u00bf\u2018-\u203a\u0152-\u0178]|Ã[\u00a0-\u00bf]")
_CJK_PREFIXES = ("CJK", "HIRAGANA", "KATAKANA", "HALFWIDTH", "FULLWIDTH", "IDEOGRAPHIC", "HANGUL", "BOPOMOFO")


@dataclass(frozen=True)
class TextLayerVerdict:
    """What :func:`judge_text_layer` decided about one page's text layer.

    Attributes:
        good: use the text layer instead of OCR (under ``text_layer="auto"``).
        quality: :func:`text_layer_quality` of the text, 0 to 1.
        chars: non-whitespace characters in the text.
        reason: one sentence saying why, for logs and debugging.
    """

    good: bool
    quality: float
    chars: int
    reason: str


def check_text_layer_mode(mode: str) -> TextLayerMode:
    """``mode`` itself if it is ``"auto"``, ``"never"`` or ``"only"``; else :class:`InvalidArgumentError`."""
    if mode not in get_args(TextLayerMode):
        raise InvalidArgumentError(f"text_layer={mode!r} is not one of 'auto', 'never', 'only'.")
    return mode  # type: ignore[return-value]


def clean_text_layer(raw: str) -> str:
    """Normalise text as PDFium extracts it: ``\\r\\n`` to ``\\n``, its line-end hyphen marker U+0002 back to
    ``-``, NULs dropped, trailing whitespace removed.

    >>> clean_text_layer("exam\\x02\\r\\nple\\r\\n")
    'exam-\\nple'
    """
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x02", "-").replace("\x00", "")
    return text.rstrip()


def text_layer_quality(text: str) -> float:
    """How much ``text`` reads like real text, from 0.0 (junk or nothing) to 1.0 (clean prose); see the module doc.

    >>> round(text_layer_quality("Invoice 2024-117, total 1,250.00 EUR, due 12.05.2024."), 2)
    1.0
    >>> text_layer_quality("")
    0.0
    """
    chars = [ch for ch in text if not ch.isspace()]
    n = len(chars)
    if n == 0:
        return 0.0
    bad = sum(1 for ch in chars if _is_bad(ch)) + len(_MOJIBAKE.findall(text))
    clean = max(0.0, 1.0 - 5.0 * bad / n)
    alnum = sum(1 for ch in chars if unicodedata.category(ch)[0] in "LMN")
    alnum_factor = min(1.0, (alnum / n) / 0.6)
    tokens = text.split()
    good_chars = sum(len(tok) for tok in tokens if _is_wordlike(tok))
    words = good_chars / n
    return round(clean * alnum_factor * words, 4)


def judge_text_layer(
    text: str,
    *,
    image_coverage: float = 0.0,
    invisible_share: float = 0.0,
    min_chars: int = MIN_CHARS,
    threshold: float = GOOD_QUALITY,
) -> TextLayerVerdict:
    """Decide whether a page's text layer is good enough to use instead of OCR.

    Args:
        text: the page's text layer.
        image_coverage: share of the page's area covered by its largest image (0 to 1).
        invisible_share: share of the page's text objects drawn invisibly (render mode 3).
        min_chars: fewer non-space characters than this is "too little text".
        threshold: the lowest acceptable :func:`text_layer_quality`.

    >>> judge_text_layer("Hello world. " * 10).good
    True
    >>> judge_text_layer("Hello world. " * 10, image_coverage=1.0, invisible_share=1.0).reason
    'invisible text over a page-sized image: an earlier OCR layer, OCR the page again'
    """
    quality = text_layer_quality(text)
    chars = sum(1 for ch in text if not ch.isspace())
    if chars < min_chars:
        what = "no text layer" if chars == 0 else f"too little text ({chars} characters, under {min_chars})"
        return TextLayerVerdict(False, quality, chars, what)
    if image_coverage >= SCAN_IMAGE_COVERAGE and invisible_share >= INVISIBLE_SHARE:
        return TextLayerVerdict(
            False, quality, chars, "invisible text over a page-sized image: an earlier OCR layer, OCR the page again"
        )
    if quality < threshold:
        return TextLayerVerdict(
            False, quality, chars, f"the text does not read as text (quality {quality:.2f} < {threshold})"
        )
    return TextLayerVerdict(True, quality, chars, f"good text layer ({chars} characters, quality {quality:.2f})")


# --------------------------------------------------------------------------------------------------------------


def _is_bad(ch: str) -> bool:
    if ch == "\ufffd":
        return True
    cat = unicodedata.category(ch)
    return cat in ("Co", "Cn", "Cs") or (cat == "Cc" and ch not in "\t\n\r")


@lru_cache(maxsize=4096)
def _script(ch: str) -> str | None:
    """A coarse script name of a letter (``LATIN``, ``ARABIC``, ``CJK``...); ``None`` for script-neutral ones."""
    cat = unicodedata.category(ch)
    if cat[0] not in "LM":
        return None
    name = unicodedata.name(ch, "")
    if not name or name.startswith(("COMBINING", "MODIFIER")):
        return None
    if name.startswith(_CJK_PREFIXES):
        return "CJK"
    return name.split(" ", 1)[0]


def _strip_edges(token: str) -> str:
    start, end = 0, len(token)
    while start < end and unicodedata.category(token[start])[0] in "PS":
        start += 1
    while end > start and unicodedata.category(token[end - 1])[0] in "PS":
        end -= 1
    return token[start:end]


def _is_wordlike(token: str) -> bool:
    core = _strip_edges(token)
    if not core:
        return False
    if _NUMBER.match(core):
        return True
    scripts: set[str] = set()
    flips = 0
    prev_lower = False
    for ch in core:
        cat = unicodedata.category(ch)
        if cat[0] in "LM":
            script = _script(ch)
            if script is not None:
                scripts.add(script)
            if cat == "Lu" and prev_lower:
                flips += 1
            prev_lower = cat == "Ll"
        elif cat[0] == "N" or ch in _INNER_OK or (cat[0] == "P" and "CJK" in scripts):
            prev_lower = False
        else:
            return False
    if not scripts and not any(unicodedata.category(ch)[0] == "N" for ch in core):
        return False
    return len(scripts) <= 1 and flips <= 1
