"""``make demo``: the main job with no API key.

Placeholder until the offline provider lands (issue "Offline and self-hosted"): it prints the version and shows
that the client is importable and configured, without sending anything.
"""

from __future__ import annotations

from . import __version__
from .imaging import tokens_for_size


def main() -> None:
    """Print the version and a token estimate, offline."""
    print(f"qwen_ocr {__version__}")
    print("The offline demo (local OCR of bundled samples) arrives with the local provider.")
    print(f"A 2480x3508 A4 scan at 300 dpi costs about {tokens_for_size(2480, 3508)} image tokens on qwen-vl-ocr.")


if __name__ == "__main__":
    main()
