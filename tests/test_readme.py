"""Every Python block of README.md and notebooks/README.md runs as written (pytest-examples), offline.

Each block runs in a fresh temporary folder (the files it names are made by its own setup lines from
``qwen_ocr.samples``), with ``DASHSCOPE_API_KEY`` and ``DASHSCOPE_BASE_URL`` pointing at the loopback emulator of
``qwen_ocr.testing``, so the blocks that need a key talk to it. A block that cannot run offline must not be a
``python`` block (use ``bash`` or ``text``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_examples import CodeExample, EvalExample, find_examples

from qwen_ocr.testing import Emulator

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", ROOT / "notebooks" / "README.md")
EXAMPLES = [example for example in find_examples(*map(str, DOCS)) if example.prefix_tags() & {"py", "python"}]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """The loopback emulator standing in for DashScope."""
    with Emulator() as emu:
        yield emu


@pytest.fixture
def workspace(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh folder as the working directory, and the environment of a user with a key (the emulator's)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-readme-example")
    monkeypatch.setenv("DASHSCOPE_BASE_URL", emulator.base_url)
    for name in ("DASHSCOPE_WORKSPACE_ID", "DASHSCOPE_API_REGION", "DASHSCOPE_HTTP_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no credentials file of the machine's user
    return tmp_path


def test_the_docs_have_python_blocks() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_block_runs_as_written(example: CodeExample, eval_example: EvalExample, workspace: Path) -> None:
    # The failure is reported as the block's place and the error: pytest cannot render a traceback through the
    # block's re-numbered code on every Python version (an INTERNALERROR instead of a failure).
    try:
        eval_example.run(example)
    except Exception as exc:  # any error of the block is its failure
        failure = f"{example}: the block raised {type(exc).__name__}: {exc}"
    else:
        return
    pytest.fail(failure, pytrace=False)
