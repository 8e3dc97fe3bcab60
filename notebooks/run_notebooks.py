"""Execute the notebooks offline and store their outputs in place, as they are committed.

    .venv/bin/python notebooks/run_notebooks.py                 # all of them
    .venv/bin/python notebooks/run_notebooks.py 01_quickstart    # some

``DASHSCOPE_API_KEY`` is removed from the kernels' environment, so the outputs are those of the offline run. Then
the outputs are tidied: progress bars keep their last state, and the run fails if an output holds an absolute path
of this machine, something that looks like an API key, or a request id (``tests/test_notebooks.py`` checks the
committed files the same way). ``make test`` executes the notebooks again without writing them (nbmake).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT = 300

FORBIDDEN = [  # as in tests/test_notebooks.py
    re.compile(r"\bsk-[A-Za-z0-9]{8,}"),
    re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE),
    re.compile(r"(?<![\w.:/])/(?:home|root|tmp|work|Users|var|private|opt|mnt|srv)/"),
    re.compile(r"\b[A-Za-z]:\\\\?(?:Users|Windows)\b"),
    re.compile(r"file:///"),
]


def _last_state(text: str) -> str:
    """A stream with carriage-return updates (progress bars) as the terminal would finally show it."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def _coalesced(outputs: list[Any]) -> list[Any]:
    """Consecutive pieces of one stream as one output, as the terminal would finally show it (progress bars)."""
    merged: list[Any] = []
    for output in outputs:
        if output.get("output_type") == "stream":
            last = merged[-1] if merged else None
            if last is not None and last.get("output_type") == "stream" and last["name"] == output["name"]:
                last["text"] += output["text"]
                continue
        merged.append(output)
    for output in merged:
        if output.get("output_type") == "stream":
            output["text"] = _last_state(output["text"])
    return [o for o in merged if o.get("output_type") != "stream" or o["text"].strip()]


def output_text(output: dict[str, Any]) -> str:
    """The text of an output that a reader sees (pictures and inline ``data:`` images left out)."""
    pieces = [output.get("text", ""), output.get("ename", ""), output.get("evalue", ""), *output.get("traceback", [])]
    for mime, value in output.get("data", {}).items():
        if not mime.startswith("image/"):
            pieces.append(
                value if isinstance(value, str) else "".join(value) if isinstance(value, list) else str(value)
            )
    return _DATA_URI.sub("data:", "\n".join(p if isinstance(p, str) else "".join(p) for p in pieces))


def _problems(book: nbformat.NotebookNode) -> list[str]:
    found: list[str] = []
    secrets = [str(HERE.parent), str(Path.home())]
    for index, cell in enumerate(book.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            text = output_text(output)
            for pattern in FORBIDDEN:
                match = pattern.search(text)
                if match:
                    found.append(f"cell {index}: {match.group(0)!r} in an output")
            found.extend(f"cell {index}: {s!r} in an output" for s in secrets if s in text)
    return found


def run(path: Path) -> float:
    book = nbformat.read(path, as_version=4)
    env_key = os.environ.pop("DASHSCOPE_API_KEY", None)
    started = time.perf_counter()
    try:
        NotebookClient(
            book, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
        ).execute()
    finally:
        if env_key is not None:
            os.environ["DASHSCOPE_API_KEY"] = env_key
    seconds = time.perf_counter() - started
    for cell in book.cells:
        cell.get("metadata", {}).pop("execution", None)
        cell["outputs"] = _coalesced(cell.get("outputs", []))
    problems = _problems(book)
    if problems:
        raise SystemExit(f"{path.name}: not written:\n  " + "\n  ".join(problems))
    nbformat.write(book, path)
    return seconds


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("*.ipynb"))
    for name in names:
        path = HERE / (name if name.endswith(".ipynb") else f"{name}.ipynb")
        seconds = run(path)
        print(f"{path.name}: {seconds:.1f} s, {path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
