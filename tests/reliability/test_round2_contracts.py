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


# --- LangChain ----------------------------------------------------------------------------------------------------


def _loader(emulator: Emulator, source: object, **options: object) -> list:  # type: ignore[type-arg]
    from langchain_qwen_ocr import QwenOCRLoader

    return QwenOCRLoader(source, api_key=KEY, base_url=emulator.base_url, **options).load()  # type: ignore[arg-type]


def test_document_ids_are_stable_across_loads(emulator: Emulator) -> None:
    first = _loader(emulator, str(MULTIPAGE), task="text_recognition", pages="1-2")
    again = _loader(emulator, str(MULTIPAGE), task="text_recognition", pages="1-2")
    assert [d.id for d in first] == [d.id for d in again] == [f"{MULTIPAGE}_part_0", f"{MULTIPAGE}_part_1"]
    (single,) = _loader(emulator, str(MULTIPAGE), task="text_recognition", pages="1-2", mode="single")
    assert single.id == str(MULTIPAGE)
    elements = _loader(emulator, str(CROM), task="table_parsing", mode="elements")
    assert [d.id for d in elements] == [f"{CROM}_part_0_{n}" for n in range(len(elements))]
    assert len({d.id for d in elements}) == len(elements)


def test_a_failed_file_has_the_unreadable_id(emulator: Emulator, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not really")
    (doc,) = _loader(emulator, str(broken), on_error="mark")
    assert doc.id == f"{broken}_unreadable" and doc.metadata["error"]


def test_elements_use_unstructured_category_names(emulator: Emulator) -> None:
    (table,) = [
        d
        for d in _loader(emulator, str(CROM), task="table_parsing", mode="elements")
        if d.metadata["category"] == "Table"
    ]
    assert table.metadata["block_kind"] == "table"
    assert str(table.metadata["text_as_html"]).startswith("<table>") and "table_html" not in table.metadata
    lines = _loader(emulator, str(CROM), task="advanced_recognition", mode="elements")
    assert {d.metadata["category"] for d in lines} == {"UncategorizedText"}


def test_line_boxes_are_left_out_unless_asked_for(emulator: Emulator) -> None:
    (plain,) = _loader(emulator, str(CROM), task="advanced_recognition")
    (boxed,) = _loader(emulator, str(CROM), task="advanced_recognition", include_lines=True)
    assert "lines" not in plain.metadata and boxed.metadata["lines"]
    # what filter_complex_metadata keeps: by default a page of text lines has scalar metadata only
    assert all(isinstance(v, (str, int, float, bool)) or v is None for v in plain.metadata.values())
    (single,) = _loader(emulator, str(CROM), task="advanced_recognition", mode="single")
    assert "lines" not in single.metadata
