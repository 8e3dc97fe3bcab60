"""What ``file_path`` may be: a path, a list, a glob, a directory, a URL, bytes with a name, a file object."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document

from langchain_qwen_ocr.document_loaders import QwenOCRLoader
from langchain_qwen_ocr.document_loaders.sources import expand_sources
from qwen_ocr import InvalidArgumentError, QwenOCR
from qwen_ocr.documents import DocumentReadError, UnsupportedDocumentError
from qwen_ocr.testing import Emulator
from tests.conftest import make_image, serve_directory
from tests.langchain.test_loader_support import CARDINAL, SKEW, SMALL, async_client, sync_client


def _sources(docs: list[Document]) -> list[tuple[str, Any]]:
    return [(str(d.metadata["source"]), d.metadata.get("page")) for d in docs]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """scans/ with a.png, b.pdf (1 page), notes.txt, .hidden.png, and sub/c.jpg, sub/d.pdf (4 pages)."""
    root = tmp_path / "scans"
    (root / "sub").mkdir(parents=True)
    (root / "a.png").write_bytes(make_image(text="a"))
    shutil.copy(SKEW, root / "b.pdf")
    (root / "notes.txt").write_text("not a scan")
    (root / ".hidden.png").write_bytes(make_image(text="hidden"))
    (root / "sub" / "c.jpg").write_bytes(make_image(text="c", fmt="JPEG"))
    shutil.copy(CARDINAL, root / "sub" / "d.PDF")
    return root


# -- paths, lists, patterns, directories -----------------------------------------------------------------------


def test_a_list_is_read_in_the_order_given(client: QwenOCR, tree: Path) -> None:
    docs = QwenOCRLoader([str(tree / "b.pdf"), tree / "a.png"], client=client, ocr_options=SMALL).load()
    assert _sources(docs) == [(str(tree / "b.pdf"), 0), (str(tree / "a.png"), 0)]


def test_a_glob_pattern_reads_its_matches_sorted(client: QwenOCR, tree: Path) -> None:
    docs = QwenOCRLoader(str(tree / "*.p*"), client=client, ocr_options=SMALL).load()
    assert _sources(docs) == [(str(tree / "a.png"), 0), (str(tree / "b.pdf"), 0)]
    deep = QwenOCRLoader(str(tree / "**" / "*.jpg"), client=client, ocr_options=SMALL).load()
    assert _sources(deep) == [(str(tree / "sub" / "c.jpg"), 0)]


def test_a_directory_reads_its_documents_by_extension_hidden_files_left_out(client: QwenOCR, tree: Path) -> None:
    top = QwenOCRLoader(tree, client=client, ocr_options=SMALL).load()
    assert _sources(top) == [(str(tree / "a.png"), 0), (str(tree / "b.pdf"), 0)]
    every = QwenOCRLoader(str(tree), recursive=True, client=client, ocr_options=SMALL).load()
    assert [Path(s).relative_to(tree).as_posix() for s, _ in _sources(every)] == [
        "a.png",
        "b.pdf",
        "sub/c.jpg",
        *["sub/d.PDF"] * 4,  # the extension check ignores case
    ]
    only_pdfs = QwenOCRLoader(tree, recursive=True, glob="*.pdf", client=client, ocr_options=SMALL).load()
    assert [Path(s).name for s, _ in _sources(only_pdfs)] == ["b.pdf"]  # glob= is case-sensitive, as the OS is


def test_an_empty_directory_says_so_and_how_to_look_deeper(client: QwenOCR, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.png").write_bytes(make_image())
    with pytest.raises(DocumentReadError, match="recursive=True") as info:
        QwenOCRLoader(tmp_path, client=client).load()
    assert info.value.code == "NoMatches"
    assert len(QwenOCRLoader(tmp_path, recursive=True, client=client).load()) == 1


def test_a_missing_file_names_the_file_and_the_fix(client: QwenOCR, tmp_path: Path) -> None:
    with pytest.raises(DocumentReadError) as info:
        QwenOCRLoader("scans/missing.pdf", client=client).load()
    assert info.value.code == "FileNotFound"
    assert "scans/missing.pdf" in info.value.message
    assert str(Path("scans/missing.pdf").absolute()) in info.value.message
    assert "glob pattern" in info.value.message


def test_a_pattern_without_matches_is_an_error(client: QwenOCR, tmp_path: Path) -> None:
    with pytest.raises(DocumentReadError, match="matches no files") as info:
        QwenOCRLoader(str(tmp_path / "*.pdf"), client=client).load()
    assert info.value.code == "NoMatches"


def test_an_unsupported_file_names_itself_and_what_is_read(client: QwenOCR, tree: Path) -> None:
    with pytest.raises(UnsupportedDocumentError) as info:
        QwenOCRLoader(tree / "notes.txt", client=client).load()
    assert "notes.txt" in info.value.message and "PDF" in info.value.message


def test_bad_entries_among_several_are_skipped_or_marked(client: QwenOCR, tree: Path) -> None:
    sources = [tree / "a.png", "missing.pdf", tree / "notes.txt", str(tree / "*.tif"), tree / "b.pdf"]
    skipped = QwenOCRLoader(sources, client=client, on_error="skip", ocr_options=SMALL).load()
    assert _sources(skipped) == [(str(tree / "a.png"), 0), (str(tree / "b.pdf"), 0)]
    marked = QwenOCRLoader(sources, client=client, on_error="mark", ocr_options=SMALL).load()
    assert [(Path(str(d.metadata["source"])).name, d.metadata.get("error_code")) for d in marked] == [
        ("a.png", None),
        ("missing.pdf", "FileNotFound"),
        ("notes.txt", "UnsupportedFormat"),
        ("*.tif", "NoMatches"),
        ("b.pdf", None),
    ]


def test_a_file_path_of_the_wrong_type_is_refused_at_construction() -> None:
    with pytest.raises(InvalidArgumentError, match="file_path is a int"):
        QwenOCRLoader(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"file_path\[1\] is a dict"):
        QwenOCRLoader(["a.pdf", {"path": "b.pdf"}])  # type: ignore[list-item]


# -- bytes and file objects -------------------------------------------------------------------------------------


def test_bytes_take_their_name_as_source(client: QwenOCR) -> None:
    data = CARDINAL.read_bytes()
    docs = QwenOCRLoader(data, name="cardinal-upload.pdf", client=client, ocr_options=SMALL).load()
    assert _sources(docs) == [("cardinal-upload.pdf", page) for page in range(4)]
    unnamed = QwenOCRLoader(make_image(), client=client).load()
    assert _sources(unnamed) == [("<bytes>", 0)]


def test_name_and_bytes_pairs_and_file_objects(client: QwenOCR) -> None:
    handle = io.BytesIO(make_image(text="from a stream"))
    docs = QwenOCRLoader([("first.png", make_image(text="one")), handle, make_image(text="two")], client=client).load()
    assert _sources(docs) == [("first.png", 0), ("<file object>", 0), ("<bytes #2>", 0)]


def test_bytes_that_are_not_a_document_name_the_source(client: QwenOCR) -> None:
    with pytest.raises(UnsupportedDocumentError, match=r"upload\.pdf"):
        QwenOCRLoader(b"<html>oops</html>", name="upload.pdf", client=client).load()


def test_expansion_is_lazy(tmp_path: Path) -> None:
    """The files of a directory are listed when loading reaches it, not when the loader is made."""
    items = expand_sources([str(tmp_path / "later.png")])
    (tmp_path / "later.png").write_bytes(make_image())
    (item,) = list(items)
    assert item.error is None and item.path == tmp_path / "later.png"


# -- URLs -------------------------------------------------------------------------------------------------------


@pytest.fixture
def web(tree: Path) -> Iterator[str]:
    """A loopback web server of the ``tree`` directory; yields its root URL."""
    with serve_directory(tree) as url:
        yield url


async def test_a_url_is_downloaded_and_is_the_source(emu: Emulator, web: str) -> None:
    url = f"{web}/sub/d.PDF"
    with sync_client(emu) as client:
        docs = QwenOCRLoader(url, client=client, ocr_options=SMALL, allow_private_urls=True).load()
    assert _sources(docs) == [(url, page) for page in range(4)]
    async with async_client(emu) as aclient:
        adocs = await QwenOCRLoader(
            [url, f"{web}/a.png"], aclient=aclient, ocr_options=SMALL, allow_private_urls=True
        ).aload()
    assert _sources(adocs) == [*[(url, page) for page in range(4)], (f"{web}/a.png", 0)]


async def test_url_credentials_stay_out_of_metadata_and_repr(client: QwenOCR, web: str) -> None:
    secret_url = web.replace("http://", "http://user:hunter2@") + "/a.png"
    loader = QwenOCRLoader(secret_url, client=client, allow_private_urls=True)
    assert "hunter2" not in repr(loader)
    (doc,) = loader.load()
    assert doc.metadata["source"] == f"{web}/a.png"


async def test_url_errors_are_typed_and_can_be_marked(emu: Emulator, web: str) -> None:
    with sync_client(emu) as client:
        with pytest.raises(DocumentReadError, match="HTTP 404") as info:
            QwenOCRLoader(f"{web}/nope.pdf", client=client, allow_private_urls=True).load()
        assert info.value.code == "DownloadFailed"
        with pytest.raises(DocumentReadError, match="larger than 1,000 bytes") as too_big:
            QwenOCRLoader(f"{web}/b.pdf", client=client, max_download_bytes=1000, allow_private_urls=True).load()
        assert too_big.value.code == "DownloadTooLarge"
        with pytest.raises(UnsupportedDocumentError, match=r"notes\.txt"):
            QwenOCRLoader(f"{web}/notes.txt", client=client, allow_private_urls=True).load()
    async with async_client(emu) as aclient:
        docs = await QwenOCRLoader(
            [f"{web}/nope.pdf", f"{web}/a.png", "http://127.0.0.1:9/unreachable.pdf"],
            aclient=aclient,
            on_error="mark",
            allow_private_urls=True,
        ).aload()
    assert [(d.metadata["source"], d.metadata.get("error_code")) for d in docs] == [
        (f"{web}/nope.pdf", "DownloadFailed"),
        (f"{web}/a.png", None),
        ("http://127.0.0.1:9/unreachable.pdf", "DownloadFailed"),
    ]
