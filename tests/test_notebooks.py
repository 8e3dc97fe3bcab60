"""The committed notebooks: executed (outputs from the offline run, no errors), each with a picture or a rendered
table, and nothing of a machine or an account in them (absolute paths, API keys, request ids).

Executing them is ``make test``'s job (``pytest --nbmake notebooks/``); these checks read the files only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
BOOKS = sorted(NOTEBOOKS.glob("*.ipynb"))

DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")
FORBIDDEN = {
    "an API key": re.compile(r"\bsk-[A-Za-z0-9]{8,}"),
    "a request id": re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE),
    "an absolute path": re.compile(r"(?<![\w.:/])/(?:home|root|tmp|work|Users|var|private|opt|mnt|srv)/"),
    "a Windows path": re.compile(r"\b[A-Za-z]:\\\\?(?:Users|Windows)\b"),
    "a file URL": re.compile(r"file:///"),
}


def load(path: Path) -> dict[str, Any]:
    book: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return book


def joined(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def visible_text(output: dict[str, Any]) -> str:
    """What a reader of the output sees as text: streams, errors, every non-image MIME type (inline images cut)."""
    pieces = [joined(output.get("text", "")), output.get("ename", ""), output.get("evalue", "")]
    pieces += [joined(line) for line in output.get("traceback", [])]
    pieces += [joined(v) for mime, v in output.get("data", {}).items() if not mime.startswith("image/")]
    return DATA_URI.sub("data:", "\n".join(pieces))


def code_cells(book: dict[str, Any]) -> list[dict[str, Any]]:
    return [cell for cell in book["cells"] if cell["cell_type"] == "code"]


def test_there_are_the_six_notebooks() -> None:
    assert [p.name for p in BOOKS] == [
        "01_quickstart.ipynb",
        "02_image_reader_chat.ipynb",
        "03_langchain_rag.ipynb",
        "04_llamaindex_tables.ipynb",
        "05_cost_and_speed.ipynb",
        "06_agents.ipynb",
    ]


@pytest.mark.parametrize("path", BOOKS, ids=[p.stem for p in BOOKS])
def test_committed_with_the_outputs_of_a_clean_run(path: Path) -> None:
    book = load(path)
    assert book["metadata"]["kernelspec"]["name"] == "python3"
    assert book["cells"][0]["cell_type"] == "markdown"  # an introduction first
    cells = code_cells(book)
    assert cells
    counts = [cell["execution_count"] for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), "run top to bottom once, in order"
    for cell in cells:
        assert all(output["output_type"] != "error" for output in cell["outputs"])


@pytest.mark.parametrize("path", BOOKS, ids=[p.stem for p in BOOKS])
def test_each_shows_a_picture_or_a_rendered_table(path: Path) -> None:
    mimes = {mime for cell in code_cells(load(path)) for output in cell["outputs"] for mime in output.get("data", {})}
    assert mimes & {"image/png", "image/jpeg", "text/html", "text/markdown"}, mimes
    rich = [
        joined(output["data"].get("text/html", "")) + joined(output["data"].get("text/markdown", ""))
        for cell in code_cells(load(path))
        for output in cell["outputs"]
        if "data" in output
    ]
    assert mimes & {"image/png", "image/jpeg"} or any("<table" in r or "| ---" in r for r in rich)


@pytest.mark.parametrize("path", BOOKS, ids=[p.stem for p in BOOKS])
def test_nothing_of_a_machine_or_an_account_in_the_outputs(path: Path) -> None:
    book = load(path)
    home = str(Path.home())
    for index, cell in enumerate(book["cells"]):
        texts = [visible_text(output) for output in cell.get("outputs", [])]
        texts.append(joined(cell["source"]))
        for text in texts:
            for what, pattern in FORBIDDEN.items():
                found = pattern.search(text)
                assert found is None, f"cell {index} holds {what}: {found.group(0)!r}"
            assert str(NOTEBOOKS.parent) not in text and (home == "/" or home not in text), f"cell {index}"
    assert "DASHSCOPE_API_KEY=" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", BOOKS, ids=[p.stem for p in BOOKS])
def test_offline_unless_a_key_is_set(path: Path) -> None:
    """Each notebook decides once, from the environment, whether to use the service, and says so in its text."""
    book = load(path)
    source = "\n".join(joined(cell["source"]) for cell in book["cells"])
    assert "from helpers import LIVE" in source
    assert "DASHSCOPE_API_KEY" in joined(book["cells"][0]["source"])


def test_the_scanner_finds_what_it_looks_for() -> None:
    leak = {
        "output_type": "stream",
        "name": "stdout",
        "text": ["key sk-abcdef123456 id 33c42355-af7e-4e0d-aafc-1409a358486f in /home/me/x.pdf"],
    }
    found = {what for what, pattern in FORBIDDEN.items() if pattern.search(visible_text(leak))}
    assert found == {"an API key", "a request id", "an absolute path"}
    picture = {"output_type": "display_data", "data": {"text/html": '<img src="data:image/png;base64,ab/home/cd=">'}}
    assert not any(pattern.search(visible_text(picture)) for pattern in FORBIDDEN.values())
    assert not FORBIDDEN["an absolute path"].search("https://en.wikipedia.org/w/index.php and data/epson.pdf")
