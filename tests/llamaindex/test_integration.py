"""The reader and the node parser inside LlamaIndex: SimpleDirectoryReader (local and fsspec), IngestionPipeline
deduplication, and offline retrieval (BM25, RecursiveRetriever) answering a question about a table cell."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import fsspec
import pytest
from llama_index.core import SimpleDirectoryReader
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
from llama_index.core.node_parser import get_leaf_nodes
from llama_index.core.retrievers import RecursiveRetriever
from llama_index.core.schema import BaseNode, Document, MetadataMode, NodeRelationship
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.retrievers.bm25 import BM25Retriever

from llamaindex_qwen_ocr import QwenOCRNodeParser, QwenOCRReader

from .conftest import CROM, MINIMAL, MULTIPAGE, TYPEWRITER

Reader = Callable[..., QwenOCRReader]

QUESTION = "What is the actual load in kN measured at channel T06?"
T06_ROW = "| T06 | T6 | Live Load | 16.47 | 5.217 |"


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    """A folder with copies of a few corpus files: 6 + 1 PDF pages and 2 PNG images."""
    folder = tmp_path / "scans"
    (folder / "sub").mkdir(parents=True)
    for source, target in (
        (MULTIPAGE, "multipage.pdf"),
        (MINIMAL, "sub/minimal-document.pdf"),
        (CROM, "crom.png"),
        (TYPEWRITER, "typewriter.png"),
    ):
        shutil.copyfile(source, folder / target)
    (folder / "notes.txt").write_text("plain text, read by SimpleDirectoryReader itself")
    return folder


def test_simple_directory_reader_with_the_reader_as_file_extractor(make_reader: Reader, corpus_copy: Path) -> None:
    reader = make_reader("text_recognition")
    sdr = SimpleDirectoryReader(
        input_dir=str(corpus_copy),
        recursive=True,
        required_exts=[".pdf", ".png"],
        file_extractor={".pdf": reader, ".png": reader},
        raise_on_error=True,
    )
    docs = sdr.load_data()

    by_file: dict[str, list[Document]] = {}
    for doc in docs:
        by_file.setdefault(doc.metadata["file_name"], []).append(doc)
    assert {name: len(pages) for name, pages in by_file.items()} == {
        "multipage.pdf": 6,
        "minimal-document.pdf": 1,
        "crom.png": 1,
        "typewriter.png": 1,
    }
    pages = by_file["multipage.pdf"]
    assert [d.metadata["page_label"] for d in pages] == ["1", "2", "3", "4", "5", "6"]
    path = str(corpus_copy / "multipage.pdf")
    assert [d.id_ for d in pages] == [f"{path}_part_{i}" for i in range(6)]
    meta = pages[0].metadata
    # SimpleDirectoryReader's file facts and the page's facts side by side; the file facts are hidden too.
    assert meta["file_path"] == path and meta["file_size"] == MULTIPAGE.stat().st_size
    assert meta["file_type"] == "application/pdf" and meta["task"] == "text_recognition"
    for key in ("file_name", "file_size", "last_modified_date", "request_id"):
        assert key in pages[0].excluded_embed_metadata_keys
    assert pages[0].get_content(metadata_mode=MetadataMode.EMBED).startswith(f"file_path: {path}\npage_label: 1\n")

    # filename_as_id gives the same ids when every page is read.
    named = SimpleDirectoryReader(
        input_files=[path], file_extractor={".pdf": reader}, filename_as_id=True, raise_on_error=True
    ).load_data()
    assert [d.id_ for d in named] == [d.id_ for d in pages]


async def test_simple_directory_reader_async_uses_the_native_async_reader(
    make_reader: Reader, corpus_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = make_reader("table_parsing")

    def no_sync(*args: object, **kwargs: object) -> list[Document]:
        raise AssertionError("SimpleDirectoryReader.aload_data must use the async reader")

    monkeypatch.setattr(QwenOCRReader, "load_data", no_sync)
    docs = await SimpleDirectoryReader(
        input_files=[str(corpus_copy / "multipage.pdf"), str(corpus_copy / "crom.png")],
        file_extractor={".pdf": reader, ".png": reader},
        raise_on_error=True,
    ).aload_data()

    assert [d.metadata["file_name"] for d in docs] == ["multipage.pdf"] * 6 + ["crom.png"]
    assert all(d.metadata["task"] == "table_parsing" and d.text.startswith("Case name") for d in docs)


@pytest.fixture
def memory_fs() -> Iterator[tuple[fsspec.AbstractFileSystem, str]]:
    """An in-memory fsspec filesystem holding copies of two corpus files (nothing of them on the local disk)."""
    fs = fsspec.filesystem("memory")
    root = f"/qwen-ocr-{uuid.uuid4().hex}"
    fs.mkdir(root)
    fs.pipe(f"{root}/multipage.pdf", MULTIPAGE.read_bytes())
    fs.pipe(f"{root}/crom.png", CROM.read_bytes())
    try:
        yield fs, root
    finally:
        fs.rm(root, recursive=True)


def test_simple_directory_reader_over_an_fsspec_filesystem(
    make_reader: Reader, memory_fs: tuple[fsspec.AbstractFileSystem, str]
) -> None:
    fs, root = memory_fs
    assert not Path(root).exists()
    reader = make_reader("document_parsing")
    docs = SimpleDirectoryReader(
        input_dir=root, fs=fs, file_extractor={".pdf": reader, ".png": reader}, raise_on_error=True
    ).load_data()

    assert sorted({d.metadata["file_name"] for d in docs}) == ["crom.png", "multipage.pdf"]
    assert len(docs) == 7
    pdf_pages = [d for d in docs if d.metadata["file_name"] == "multipage.pdf"]
    assert pdf_pages[0].metadata["file_path"] == f"{root}/multipage.pdf"
    assert pdf_pages[0].id_ == f"{root}/multipage.pdf_part_0"
    assert pdf_pages[0].metadata["total_pages"] == 6 and "Abstract" in pdf_pages[0].text

    # Directly too, and asynchronously.
    direct = reader.load_data(f"{root}/crom.png", fs=fs)
    assert [d.id_ for d in direct] == [f"{root}/crom.png_part_0"]


async def test_async_reading_from_an_fsspec_filesystem(
    make_reader: Reader, memory_fs: tuple[fsspec.AbstractFileSystem, str]
) -> None:
    fs, root = memory_fs
    docs = await make_reader("table_parsing", pages="2-3").aload_data(f"{root}/multipage.pdf", fs=fs)
    assert [d.metadata["page_label"] for d in docs] == ["2", "3"]
    assert [d.id_ for d in docs] == [f"{root}/multipage.pdf_part_1", f"{root}/multipage.pdf_part_2"]


def _documents(make_reader: Reader) -> list[Document]:
    return [
        *make_reader("document_parsing", pages="1-2").load_data(MULTIPAGE),
        *make_reader("table_parsing", pages="3").load_data(MULTIPAGE),
        *make_reader("key_information_extraction").load_data(CROM),
    ]


def test_ingestion_pipeline_run_twice_adds_nothing_the_second_time(make_reader: Reader) -> None:
    docs = _documents(make_reader)
    pipeline = IngestionPipeline(
        transformations=[QwenOCRNodeParser()],
        docstore=SimpleDocumentStore(),
        docstore_strategy=DocstoreStrategy.DUPLICATES_ONLY,
    )
    first = pipeline.run(documents=docs)
    second = pipeline.run(documents=docs)

    assert len(first) > len(docs) and second == []
    assert len(pipeline.docstore.docs) == len(docs)
    assert len({n.node_id for n in first}) == len(first)


def test_ingestion_pipeline_with_a_vector_store_stores_each_node_once(make_reader: Reader) -> None:
    docs = _documents(make_reader)
    store = SimpleVectorStore()
    pipeline = IngestionPipeline(
        transformations=[QwenOCRNodeParser(), MockEmbedding(embed_dim=8)],
        docstore=SimpleDocumentStore(),
        vector_store=store,
    )
    first = pipeline.run(documents=docs)
    stored = set(store.data.embedding_dict)
    assert stored == {n.node_id for n in first}

    # The same documents again: nothing to do.
    assert pipeline.run(documents=docs) == []
    # The files read again (new request ids, so the page documents differ): their nodes are replaced under the
    # same ids, not added next to the old ones.
    again = pipeline.run(documents=_documents(make_reader))
    assert {n.node_id for n in again} == stored
    assert set(store.data.embedding_dict) == stored


def _table_answer(nodes: list[BaseNode]) -> BaseNode:
    (node,) = [n for n in nodes if T06_ROW in n.get_content()]
    return node


def test_bm25_answers_a_question_about_a_table_cell_with_the_table_node(make_reader: Reader) -> None:
    nodes = QwenOCRNodeParser().get_nodes_from_documents(_documents(make_reader))
    content = [n for n in get_leaf_nodes(nodes) if n.metadata["node_kind"] != "table_summary"]
    retriever = BM25Retriever.from_defaults(nodes=content, similarity_top_k=3)

    top = retriever.retrieve(QUESTION)[0].node
    assert top.metadata["node_kind"] == "table"
    assert T06_ROW in top.get_content() and "Actual Load(kN)" in top.get_content()
    assert top.metadata["page_label"] == "3" and top.metadata["page"] == 2
    assert top.metadata["file_name"] == "multipage.pdf"
    assert top.ref_doc_id == f"{MULTIPAGE}_part_2"
    assert top.node_id == _table_answer(nodes).node_id


def test_recursive_retriever_follows_the_table_summary_to_the_table(make_reader: Reader) -> None:
    nodes = QwenOCRNodeParser().get_nodes_from_documents(_documents(make_reader))
    base, mapping = QwenOCRNodeParser.get_base_nodes_and_mappings(get_leaf_nodes(nodes))
    assert all(n.metadata["node_kind"] != "table" for n in base)

    bm25 = BM25Retriever.from_defaults(nodes=base, similarity_top_k=2)
    retriever = RecursiveRetriever("bm25", retriever_dict={"bm25": bm25}, node_dict=mapping)
    found = retriever.retrieve(QUESTION)

    top = found[0].node
    assert top.metadata["node_kind"] == "table" and T06_ROW in top.get_content()
    assert top.metadata["page_label"] == "3"
    assert top.relationships[NodeRelationship.SOURCE].node_id == f"{MULTIPAGE}_part_2"
