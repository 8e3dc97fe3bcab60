"""What the commands of ``qwen-ocr`` (:mod:`qwen_ocr.cli`, :mod:`qwen_ocr.cli_batch`) share: bad usage and error
lines on stderr, the ``argparse`` type of a count, whether a stream is a terminal, and a tqdm bar on stderr.

Example::

    add_reading_options(parser)                # --task, --schema, --prompt, --pages, --password
    parser.add_argument("--concurrency", type=whole_number)
    if is_terminal(sys.stderr):
        bar = stderr_bar(total=10, unit="page", desc="qwen-ocr")
    error("no key")                       # qwen-ocr: error: no key
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from .tasks import Task

__all__ = ["UsageError", "add_reading_options", "error", "is_terminal", "stderr_bar", "whole_number"]


class UsageError(Exception):
    """Bad usage, found before anything is sent, read or written: one line on stderr, exit code 2."""


def error(message: str) -> None:
    """``qwen-ocr: error: <message>`` on stderr."""
    print(f"qwen-ocr: error: {message}", file=sys.stderr)


def whole_number(text: str) -> int:
    """An ``argparse`` type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def add_reading_options(parser: argparse.ArgumentParser) -> None:
    """What to read and how, as ``qwen-ocr read`` and ``qwen-ocr batch submit`` take it: ``--task``,
    ``--schema``, ``--prompt``, ``--pages``, ``--password``."""
    parser.add_argument("--task", choices=[t.value for t in Task], help="a built-in task (default: plain text)")
    parser.add_argument("--schema", help='key_information_extraction fields as JSON, e.g. \'{"Total": ""}\'')
    parser.add_argument("--prompt", help="a custom instruction (ignored by the service when --task is set)")
    parser.add_argument("--pages", help="pages of a document, 1-based: 1-3,7")
    parser.add_argument("--password", help="password of an encrypted PDF")


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal (``False`` for ``None``, a closed stream, or one without ``isatty``)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


def stderr_bar(*, total: int, unit: str, desc: str) -> Any:
    """A tqdm bar on stderr, as wide as the terminal (80 columns where it does not say its width); ``None``, with a
    line saying why, when tqdm is missing."""
    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:  # a dependency of qwen-ocr; missing only from a broken install
        print("qwen-ocr: no progress bar: tqdm is not installed (pip install tqdm)", file=sys.stderr)
        return None
    try:  # a terminal that does not say its width (0 columns) would get an empty bar
        sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (OSError, AttributeError, ValueError):
        sized = False
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=sized, ncols=None if sized else 80)
