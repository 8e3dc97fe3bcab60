"""Round 2, one page policy (issue 15): the same page gives the same text and the same metadata keys in every
integration, because the policy lives once, in core.

- Page text: ``qwen_ocr.rendering`` (``OCRResult.to_markdown`` / ``to_text``). The LangChain loader gave
  ``document_parsing`` pages as Markdown and the LlamaIndex reader as plain text; extracted fields were the model's
  JSON in one and ``key: value`` lines in the other.
- Tables: ``qwen_ocr.tables.TableLayout``. ``Table.to_markdown`` made the first row the header (even a title row
  spanning the table) while the node parser read it as the caption; a table with a caption and a title row lost the
  title row's text in the node parser.
- Metadata keys: ``qwen_ocr.page_metadata``. The same data was ``tables_html``/``html``, ``fields``/``fields_json``,
  ``lines``/``lines_json``, ``table_oversized``/``oversized``; and a key missing from the hand-written
  ``HIDDEN_KEYS`` list (``cache``) entered the embedded text.
- Task: ``qwen_ocr.tasks.resolve_task``. ``QwenOCRReader(schema=...)`` sent ``text_recognition`` with a schema (every
  page failed), ``QwenOCRReader(prompt=...)`` sent its prompt with a task (the service ignores it), and the loader
  accepted a schema with another task, failing only when pages were read.

Every test runs against the loopback emulator (``qwen_ocr.testing``) under a hang guard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_qwen_ocr import QwenOCRLoader
from langchain_qwen_ocr.document_loaders.documents import element_documents
from llamaindex_qwen_ocr import QwenOCRNodeParser, QwenOCRReader
from qwen_ocr import InvalidArgumentError, QwenOCR, Table, TableCell
from qwen_ocr.reading import PageResult
from qwen_ocr.results import OCRResult, build_result
from qwen_ocr.tasks import Task
from qwen_ocr.testing import Emulator
from tests.conftest import DATA

from ._support import time_budget

BUDGET = 60.0  # seconds: a hang guard only
KEY = "sk-policy-test-secret"
CROM = DATA / "corpus" / "ocrmypdf" / "crom.png"
TASKS = ["document_parsing", "table_parsing", "key_information_extraction"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def client(emulator: Emulator) -> Iterator[QwenOCR]:
    with QwenOCR(api_key=KEY, base_url=emulator.base_url, max_retries=0) as c:
        yield c


def _langchain(client: QwenOCR, **options: Any) -> Any:
    (doc,) = QwenOCRLoader(CROM, client=client, include_lines=True, **options).load()
    return doc


def _llamaindex(client: QwenOCR, **options: Any) -> Any:
    (doc,) = QwenOCRReader(client=client, **options).load_data(CROM)
    return doc


# -- the same page, the same text -------------------------------------------------------------------------------


@pytest.mark.parametrize("task", TASKS)
def test_the_loader_and_the_reader_give_identical_text(client: QwenOCR, task: str) -> None:
    with time_budget(BUDGET):
        loaded = _langchain(client, task=task)
        read = _llamaindex(client, task=task)
    assert loaded.page_content == read.text
    assert loaded.page_content == client.ocr(CROM, task=task).to_markdown()  # Markdown by default


async def test_the_async_reader_gives_the_same_text(emulator: Emulator, client: QwenOCR) -> None:
    from qwen_ocr import AsyncQwenOCR

    with time_budget(BUDGET):
        loaded = _langchain(client, task="document_parsing")
        async with AsyncQwenOCR(api_key=KEY, base_url=emulator.base_url, max_retries=0) as aclient:
            (read,) = await QwenOCRReader(client=client, aclient=aclient, task="document_parsing").aload_data(CROM)
    assert loaded.page_content == read.text


@pytest.mark.parametrize("content_format", ["markdown", "text", "raw"])
def test_every_content_format_is_the_same_in_both(client: QwenOCR, content_format: str) -> None:
    with time_budget(BUDGET):
        loaded = _langchain(client, task="document_parsing", content_format=content_format)
        read = _llamaindex(client, task="document_parsing", content_format=content_format)
    assert loaded.page_content == read.text
    if content_format == "markdown":
        assert read.text.startswith("# Qwen2-VL") and "\n## Abstract\n" in read.text
    elif content_format == "text":
        assert read.text.startswith("Qwen2-VL") and "#" not in read.text.split("\n", 1)[0]
    else:
        assert read.text.startswith("\\documentclass")


def test_fields_read_as_key_value_lines_in_both(client: QwenOCR) -> None:
    with time_budget(BUDGET):
        loaded = _langchain(client, task="key_information_extraction")
    assert loaded.page_content.splitlines() == [
        "乘车日期: 2013-06-29",
        "发票.发票代码: 221021325353",
        "发票.发票号码: 10283819",
    ]


# -- tables: one layout ------------------------------------------------------------------------------------------


def _titled_table() -> Table:
    def row(*texts: str, header: bool = False) -> list[TableCell]:
        return [TableCell(text=t, header=header) for t in texts]

    return Table(
        rows=[
            [TableCell(text="Sales 2024", colspan=3)],  # a title row spanning the table
            [TableCell(text="Region", rowspan=2, header=True), TableCell(text="Quarter", colspan=2, header=True)],
            row("Q1", "Q2", header=True),
            row("North", "1", "2"),
        ]
    )


def test_a_title_row_and_a_two_row_header_read_the_same_in_the_table_and_the_node_parser() -> None:
    from llama_index.core.schema import Document

    table = _titled_table()
    expected = [
        "Sales 2024",
        "",
        "| Region | Quarter / Q1 | Quarter / Q2 |",
        "| --- | --- | --- |",
        "| North | 1 | 2 |",
    ]
    assert table.to_markdown().splitlines() == expected
    with time_budget(BUDGET):
        nodes = QwenOCRNodeParser(table_summaries=False).get_nodes_from_documents(
            [Document(id_="t", text=table.to_html())]
        )
    (node,) = nodes
    assert node.get_content().splitlines() == expected


def test_a_table_with_a_caption_keeps_its_title_row_text() -> None:
    from llama_index.core.schema import Document

    table = _titled_table().model_copy(update={"caption": "Table 3"})
    with time_budget(BUDGET):
        (node,) = QwenOCRNodeParser(table_summaries=False).get_nodes_from_documents(
            [Document(id_="t", text=table.to_html())]
        )
    assert node.get_content().startswith("Table 3 / Sales 2024\n\n| Region |")
    assert node.metadata["caption"] == "Table 3 / Sales 2024"


def test_a_latex_table_caption_is_read_once_with_its_table() -> None:
    latex = (
        "\\begin{table}\\caption{Loads}\\begin{tabular}{ll}Channel & Load \\\\ V02 & 0.8 \\\\ \\end{tabular}"
        "\\end{table}"
    )
    result = build_result(latex, task=Task.DOCUMENT_PARSING, model="m")
    for text in (result.to_markdown(), result.to_text()):
        assert text.count("Loads") == 1 and text.startswith("Loads\n\n| Channel | Load |")
    page = PageResult(source="p.png", index=0, label="1", total_pages=1, result=result)
    (element,) = element_documents(page)
    assert element.metadata["category"] == "Table" and element.page_content == result.to_markdown()


# -- one key set -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "keys"),
    [
        ("table_parsing", {"tables_html", "tables_truncated"}),
        ("key_information_extraction", {"fields"}),
        ("document_parsing", {"latex"}),
        ("advanced_recognition", {"lines"}),
    ],
)
def test_the_loader_and_the_reader_use_the_same_keys(client: QwenOCR, task: str, keys: set[str]) -> None:
    with time_budget(BUDGET):
        loaded = _langchain(client, task=task)
        read = _llamaindex(client, task=task)
    assert keys <= set(loaded.metadata) and keys <= set(read.metadata)
    # The same keys apart from how each framework names the file; LlamaIndex values are flat (JSON text).
    assert set(loaded.metadata) - {"source"} == set(read.metadata) - {"file_name", "file_path"}
    for key in keys:
        value = loaded.metadata[key]
        assert read.metadata[key] == (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
        assert key in read.excluded_embed_metadata_keys and key in read.excluded_llm_metadata_keys


def test_elements_and_nodes_name_a_table_the_same(client: QwenOCR) -> None:
    from qwen_ocr.page_metadata import KEYS

    with time_budget(BUDGET):
        (element,) = [
            d
            for d in QwenOCRLoader(CROM, client=client, task="table_parsing", mode="elements").load()
            if d.metadata["category"] == "Table"
        ]
        nodes = QwenOCRNodeParser().get_nodes_from_documents([_llamaindex(client, task="table_parsing")])
    node = next(n for n in nodes if n.metadata["node_kind"] == "table")
    assert element.metadata["text_as_html"] == node.metadata["table_html"]  # unstructured's name in LangChain
    assert "table_html" in KEYS and "text_as_html" in KEYS and "table_oversized" in KEYS
    assert element.page_content.split("\n\n")[0] == node.get_content().split("\n\n")[0]  # the same title line


def test_a_cached_page_keeps_the_cache_key_out_of_embeddings(emulator: Emulator, tmp_path: Path) -> None:
    with time_budget(BUDGET), QwenOCR(api_key=KEY, base_url=emulator.base_url, cache=tmp_path) as cached:
        _llamaindex(cached, task="text_recognition")
        again = _llamaindex(cached, task="text_recognition")
    assert again.metadata["cache"] == "hit"
    assert "cache" in again.excluded_embed_metadata_keys and "cache" in again.excluded_llm_metadata_keys


def test_every_key_the_node_parser_writes_is_declared(client: QwenOCR) -> None:
    from llamaindex_qwen_ocr._metadata import KEYS, hidden_keys

    with time_budget(BUDGET):
        docs = [_llamaindex(client, task=task) for task in [*TASKS, "advanced_recognition"]]
        nodes = QwenOCRNodeParser().get_nodes_from_documents(docs)
    for node in nodes:
        assert set(node.metadata) <= set(KEYS), set(node.metadata) - set(KEYS)
        hidden = {key for key in node.metadata if not KEYS[key].embed}
        assert hidden <= set(node.excluded_embed_metadata_keys)
    with pytest.raises(KeyError, match="not_declared"):
        hidden_keys({"not_declared": 1}, own=["not_declared"])


def test_metadata_written_by_the_page_policy_reads_back(client: QwenOCR) -> None:
    from qwen_ocr.page_metadata import flat_metadata, result_from_metadata

    result = client.ocr(CROM, task="table_parsing")
    page = PageResult(source="crom.png", index=0, label="1", total_pages=1, result=result)
    for meta in (page.metadata(), flat_metadata(page.metadata())):
        back = result_from_metadata(meta, result.to_markdown())
        assert [t.to_markdown() for t in back.tables] == [t.to_markdown() for t in result.tables]
        assert [t.truncated for t in back.tables] == [True]  # the recorded table is cut off


# -- one task rule -----------------------------------------------------------------------------------------------


def test_the_reader_with_a_schema_and_no_task_extracts_fields(emulator: Emulator, client: QwenOCR) -> None:
    emulator.reset()
    with time_budget(BUDGET):
        doc = _llamaindex(client, schema={"发票": {"发票号码": ""}})
    assert doc.metadata["task"] == "key_information_extraction"
    assert json.loads(doc.metadata["fields"])["发票"]["发票号码"] == "10283819"


def test_the_reader_with_a_prompt_and_no_task_sends_the_prompt(emulator: Emulator, client: QwenOCR) -> None:
    emulator.reset()
    with time_budget(BUDGET):
        doc = _llamaindex(client, prompt="Read only the stamp.")
    body = json.dumps(emulator.request_log[-1].json, ensure_ascii=False)
    assert "Read only the stamp." in body and '"task"' not in body
    assert "task" not in doc.metadata  # no built-in task: a custom prompt


def test_a_schema_with_another_task_is_refused_when_the_loader_is_made(client: QwenOCR) -> None:
    with pytest.raises(InvalidArgumentError, match="key_information_extraction"):
        QwenOCRLoader(CROM, client=client, task="table_parsing", schema={"Total": ""})


def test_one_rule_decides_the_task() -> None:
    from langchain_qwen_ocr.image_reader.reader import ocr_options
    from qwen_ocr.tasks import resolve_task

    assert resolve_task("table_parsing", None) is Task.TABLE_PARSING
    assert resolve_task(None, {"a": ""}) is Task.KEY_INFORMATION_EXTRACTION
    assert resolve_task(None, None, "custom", default=Task.TEXT_RECOGNITION) is None
    with pytest.raises(InvalidArgumentError, match="schema= goes with"):
        resolve_task("document_parsing", {"a": ""})
    assert ocr_options(task=None, schema=None, prompt=None)["task"] is Task.TEXT_RECOGNITION
    assert OCRResult(text="x").to_markdown() == OCRResult(text="x").to_text() == "x"
