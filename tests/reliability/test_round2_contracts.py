"""Round 2 (issue 19): the adapters keep their frameworks' contracts.

LlamaIndex: ``alazy_load_data`` is what ``BaseReader`` defines (a coroutine returning an iterable), a list of files
gives every file's pages, and hidden metadata keys appear once, also under ``SimpleDirectoryReader``. LangChain:
``Document.id`` is stable across loads, elements use unstructured's category names, per-line boxes are optional.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_ocr.testing import Emulator
from tests.conftest import DATA

KEY = "sk-contracts-test-secret-1919"
CORPUS = DATA / "corpus"
MULTIPAGE = CORPUS / "ocrmypdf" / "multipage.pdf"  # 6 pages
CROM = CORPUS / "ocrmypdf" / "crom.png"
TYPEWRITER = CORPUS / "ocrmypdf" / "typewriter.png"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """The loopback emulator answering every task with its recorded reply."""
    with Emulator() as emu:
        yield emu


# --- LlamaIndex ---------------------------------------------------------------------------------------------------


def test_alazy_load_data_is_a_coroutine_returning_an_iterable(emulator: Emulator) -> None:
    from llamaindex_qwen_ocr import QwenOCRReader

    reader = QwenOCRReader(api_key=KEY, base_url=emulator.base_url, task="text_recognition")
    assert inspect.iscoroutinefunction(QwenOCRReader.alazy_load_data)

    async def generic(path: Path) -> list[str]:  # what code written against BaseReader does
        return [d.id_ for d in list(await asyncio.wait_for(reader.alazy_load_data(str(path)), 30))]

    ids = asyncio.run(generic(CROM))
    assert ids == [f"{CROM}_part_0"]


def test_load_data_takes_a_list_of_files(emulator: Emulator) -> None:
    from llamaindex_qwen_ocr import QwenOCRReader

    docs = QwenOCRReader(api_key=KEY, base_url=emulator.base_url, task="text_recognition").load_data(
        [str(CROM), str(TYPEWRITER)]
    )
    assert [d.metadata["file_name"] for d in docs] == ["crom.png", "typewriter.png"]


def test_hidden_keys_appear_once_under_simple_directory_reader(emulator: Emulator, tmp_path: Path) -> None:
    from llama_index.core import SimpleDirectoryReader

    from llamaindex_qwen_ocr import QwenOCRReader

    shutil.copyfile(CROM, tmp_path / "crom.png")
    reader = QwenOCRReader(api_key=KEY, base_url=emulator.base_url, task="text_recognition")
    for docs in (
        SimpleDirectoryReader(str(tmp_path), file_extractor={".png": reader}, raise_on_error=True).load_data(),
        asyncio.run(
            SimpleDirectoryReader(str(tmp_path), file_extractor={".png": reader}, raise_on_error=True).aload_data()
        ),
        reader.load_data(str(tmp_path / "crom.png")),
    ):
        assert len(docs) == 1
        for keys in (docs[0].excluded_embed_metadata_keys, docs[0].excluded_llm_metadata_keys):
            assert len(keys) == len(set(keys)), sorted(keys)
            assert "file_name" in keys
