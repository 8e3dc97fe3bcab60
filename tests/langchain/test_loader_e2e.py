"""End to end: a scanned PDF -> QwenOCRLoader -> RecursiveCharacterTextSplitter -> an in-memory vector store ->
retrieval of a phrase returns a chunk whose metadata names the page the phrase is printed on.

The pages are read for real: the emulator answers with the local OCR engine's reading of each page image.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator

import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_text_splitters import RecursiveCharacterTextSplitter

from langchain_qwen_ocr.document_loaders import QwenOCRLoader, page_for_offset
from qwen_ocr import QwenOCR
from qwen_ocr.testing import Emulator
from tests.langchain.test_loader_support import sync_client, text_pages_pdf

PAGES = [
    "Quarterly report | The walrus colony grew in April | Figures follow below",
    "Quarterly report | Copper kettles were shipped to Lisbon | Figures follow below",
    "Quarterly report | The lighthouse keeper retired in June | Figures follow below",
    "Quarterly report | Seventeen violins arrived damaged | Figures follow below",
]
BUDGET = {"max_pixels": 300_000}
"""Pages of about 650x460 px: the text stays easy to read, and the local engine reads a page in a fraction of a
second."""
QUERIES = [
    ("walrus colony April", 0),
    ("copper kettles shipped to Lisbon", 1),
    ("lighthouse keeper retired", 2),
    ("violins arrived damaged", 3),
]


class BagOfWords(Embeddings):
    """A deterministic embedding: words hashed into 256 buckets, counted, L2-normalised (cosine = word overlap)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.size
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % self.size] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


@pytest.fixture(scope="module")
def client() -> Iterator[QwenOCR]:
    with Emulator(reader="local") as emu, sync_client(emu) as made:
        yield made


def test_retrieval_names_the_page_of_the_phrase(client: QwenOCR) -> None:
    pdf = text_pages_pdf(PAGES)
    docs = QwenOCRLoader(pdf, name="quarterly.pdf", client=client, ocr_options=BUDGET).load()
    assert [d.metadata["page"] for d in docs] == [0, 1, 2, 3]
    assert "Copper kettles" in docs[1].page_content
    chunks = RecursiveCharacterTextSplitter(chunk_size=40, chunk_overlap=0).split_documents(docs)
    assert len(chunks) >= 3 * len(docs)  # every page is cut into several chunks
    store = InMemoryVectorStore.from_documents(chunks, BagOfWords())
    for query, page in QUERIES:
        (best,) = store.similarity_search(query, k=1)
        assert best.metadata["page"] == page, (query, best)
        assert best.metadata["source"] == "quarterly.pdf"
        assert best.metadata["total_pages"] == 4


def test_retrieval_from_a_single_document_maps_chunks_back_to_pages(client: QwenOCR) -> None:
    pdf = text_pages_pdf(PAGES)
    (doc,) = QwenOCRLoader(pdf, name="quarterly.pdf", client=client, mode="single", ocr_options=BUDGET).load()
    splitter = RecursiveCharacterTextSplitter(chunk_size=40, chunk_overlap=0, add_start_index=True)
    store = InMemoryVectorStore.from_documents(splitter.split_documents([doc]), BagOfWords())
    for query, page in QUERIES:
        (best,) = store.similarity_search(query, k=1)
        assert page_for_offset(best.metadata, best.metadata["start_index"]) == page, (query, best)
