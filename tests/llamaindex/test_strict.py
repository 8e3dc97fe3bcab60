"""Strict settings and no silent failure (issue 18): unknown arguments are refused naming the close match, and a
``SimpleDirectoryReader`` run whose every file fails for one cause (no key) says so."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from llama_index.core import SimpleDirectoryReader

from llamaindex_qwen_ocr import QwenOCRNodeParser, QwenOCRReader
from qwen_ocr import InvalidArgumentError, MissingAPIKeyError
from tests.conftest import make_image


def test_node_parser_refuses_unknown_settings() -> None:
    with pytest.raises(InvalidArgumentError, match="did you mean 'chunk_size'"):
        QwenOCRNodeParser(chunk_sise=10)
    assert QwenOCRNodeParser(chunk_size=10).chunk_size == 10
    saved = QwenOCRNodeParser(table_max_rows=5).to_dict()
    saved.pop("class_name")
    saved.pop("id_func")  # serialised as a description, not a callable (as for any LlamaIndex node parser)
    assert QwenOCRNodeParser(**saved).table_max_rows == 5  # every name it serialises is accepted back


def test_reader_refuses_unknown_settings() -> None:
    with pytest.raises(InvalidArgumentError, match="did you mean 'model'"):
        QwenOCRReader(modle="qwen-vl-ocr-latest")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(make_image(text=name))
    return tmp_path


def test_every_file_failing_without_a_key_is_logged_with_its_cause(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="llamaindex_qwen_ocr")
    reader = QwenOCRReader()  # no key anywhere (the tests' environment has none)
    docs = SimpleDirectoryReader(str(folder), file_extractor={".png": reader}).load_data()
    assert docs == []  # SimpleDirectoryReader skips what a reader raises...
    warnings = [r for r in caplog.records if r.name == "llamaindex_qwen_ocr" and r.levelno == logging.WARNING]
    assert len(warnings) == 1  # ...and the reader said why, once (not once per file)
    message = warnings[0].getMessage()
    assert "DASHSCOPE_API_KEY" in message and "provider='local'" in message and "raise_on_error=True" in message


def test_every_file_failing_raises_with_raise_on_error(folder: Path) -> None:
    reader = QwenOCRReader()
    with pytest.raises(Exception, match="Error loading file") as caught:  # SimpleDirectoryReader's own wrapper
        SimpleDirectoryReader(str(folder), file_extractor={".png": reader}, raise_on_error=True).load_data()
    assert isinstance(caught.value.__cause__, MissingAPIKeyError)


def test_the_reader_raises_the_missing_key_on_its_own(folder: Path) -> None:
    with pytest.raises(MissingAPIKeyError, match="provider='local'"):
        QwenOCRReader(on_error="mark").load_data(str(folder / "a.png"))
