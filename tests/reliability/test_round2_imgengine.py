"""Round 2: ``ImageReader`` reads its images through the one engine (``qwen_ocr.read_documents`` /
``aread_documents``), never through ``ocr_many``; an image URL reaches the service as a URL through the engine's
:class:`qwen_ocr.RemoteImage` source.

A stub transport answers by image content (no sockets, no network); the engine is watched with a spy that wraps it.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from langchain_qwen_ocr.image_reader import ImageReader
from qwen_ocr import (
    AsyncQwenOCR,
    AuthenticationError,
    BadRequestError,
    InvalidArgumentError,
    PageResult,
    QwenOCR,
    RemoteImage,
    engine,
    read_documents,
)
from qwen_ocr.sources import describe_sources, expand_sources
from tests.langchain.conftest import ImageOCRStub

from ._support import numbered_png, time_budget

GUARD = 20.0  # seconds: a hang guard

PNG_A, PNG_B = numbered_png(301), numbered_png(302)
URL = "https://images.example.com/receipt.png"  # never contacted: the stub transport answers for the service


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _message() -> HumanMessage:
    """Three images: an http(s) URL, a data: URL and an inline base64 part (LangChain v1 block)."""
    return HumanMessage(
        [
            {"type": "text", "text": "What do these say?"},
            {"type": "image_url", "image_url": {"url": URL}},
            {"type": "image_url", "image_url": {"url": _data_url(PNG_A)}},
            {"type": "image", "base64": base64.b64encode(PNG_B).decode("ascii"), "mime_type": "image/png"},
        ]
    )


def _texts(content: Any) -> list[str]:
    return [part["text"] for part in content if isinstance(part, dict) and part.get("type") == "text"]


def _stub() -> ImageOCRStub:
    # the replies arrive out of order (the URL's last), so image order must come from the engine, not the wire
    return ImageOCRStub({URL: "URL TEXT", PNG_A: "A TEXT", PNG_B: "B TEXT"}, delays={URL: 0.1, PNG_A: 0.05})


def _no_ocr_many(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("ImageReader called ocr_many instead of the engine")

    monkeypatch.setattr(QwenOCR, "ocr_many", refuse)
    monkeypatch.setattr(AsyncQwenOCR, "ocr_many", refuse)


def _check_sources(sources: list[Any]) -> None:
    assert sources[0] == RemoteImage(URL)  # the service downloads it
    assert [type(entry) for entry in sources[1:]] == [tuple, tuple]
    assert [entry[1] for entry in sources[1:]] == [PNG_A, PNG_B]  # data: URL and base64 part: bytes


def _check_output(out: Any, stub: ImageOCRStub) -> None:
    texts = "\n".join(_texts(out.content))
    assert texts.index("URL TEXT") < texts.index("A TEXT") < texts.index("B TEXT")  # image order
    assert URL in stub.seen  # sent as a URL, not downloaded
    assert stub.calls == 3


def test_image_reader_reads_its_images_through_read_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[Any], dict[str, Any]]] = []
    real = engine.read_documents

    def spy(client: QwenOCR, sources: Any, **options: Any) -> Iterator[PageResult]:
        calls.append((list(sources), options))
        return real(client, sources, **options)

    monkeypatch.setattr(engine, "read_documents", spy)
    _no_ocr_many(monkeypatch)
    stub = _stub()
    reader = ImageReader(client=stub.client(), aclient=stub.aclient())
    with time_budget(GUARD):
        [out] = reader.invoke([_message()])
    [(sources, options)] = calls  # one reading, one window, for every image
    _check_sources(sources)
    assert options["on_error"] == "mark"  # the reader renders "mark", "skip" and "keep_image" from marked results
    _check_output(out, stub)
    with time_budget(GUARD):
        reader.invoke([_message()])
    assert len(calls) == 1 and stub.calls == 3  # the second call is answered by the per-content cache


async def test_image_reader_reads_its_images_through_aread_documents(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[list[Any], dict[str, Any]]] = []
    real = engine.aread_documents

    def spy(client: AsyncQwenOCR, sources: Any, **options: Any) -> AsyncIterator[PageResult]:
        calls.append((list(sources), options))
        return real(client, sources, **options)

    def no_sync(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the async path used the sync engine")

    monkeypatch.setattr(engine, "aread_documents", spy)
    monkeypatch.setattr(engine, "read_documents", no_sync)
    _no_ocr_many(monkeypatch)
    stub = _stub()
    reader = ImageReader(client=stub.client(), aclient=stub.aclient(), on_error="raise")
    [out] = await reader.ainvoke([_message()])
    [(sources, options)] = calls
    _check_sources(sources)
    assert options["on_error"] == "raise"  # the engine's own policy: the reading stops at the first error
    _check_output(out, stub)


def test_on_error_raise_is_the_engines_and_stops_the_reading() -> None:
    # B fails; with on_error="raise" the engine raises its error and the images after it are not sent
    png_c = numbered_png(303)
    stub = ImageOCRStub({PNG_A: "A TEXT", PNG_B: 400, png_c: "C TEXT"}, delays={png_c: 0.3})
    message = HumanMessage(
        [{"type": "image_url", "image_url": {"url": _data_url(png)}} for png in (PNG_A, PNG_B, png_c)]
    )
    reader = ImageReader(client=stub.client(), on_error="raise", max_concurrency=1)
    with time_budget(GUARD), pytest.raises(BadRequestError):
        reader.invoke([message])
    assert stub.calls == 2  # C was never sent


def test_a_part_that_may_not_be_read_fails_on_error_raise_before_anything_is_read() -> None:
    stub = ImageOCRStub({PNG_A: "A TEXT"})
    message = HumanMessage(
        [
            {"type": "image_url", "image_url": {"url": _data_url(PNG_A)}},
            {"type": "image_url", "image_url": {"url": "/etc/passwd"}},  # no allowed_dir: refused
        ]
    )
    reader = ImageReader(client=stub.client(), on_error="raise")
    with time_budget(GUARD), pytest.raises(Exception, match="allowed_dir"):
        reader.invoke([message])
    assert stub.calls == 0


def test_a_wrong_key_is_raised_by_the_engine_whatever_on_error() -> None:
    stub = ImageOCRStub({PNG_A: 401})
    message = HumanMessage([{"type": "image_url", "image_url": {"url": _data_url(PNG_A)}}])
    for on_error in ("mark", "skip", "keep_image"):
        reader = ImageReader(client=stub.client(), on_error=on_error)
        with time_budget(GUARD), pytest.raises(AuthenticationError):
            reader.invoke([message])


# -- core: RemoteImage ---------------------------------------------------------------------------------------------


def test_read_documents_sends_a_remote_image_as_a_url_and_downloads_nothing() -> None:
    stub = ImageOCRStub({URL: "URL TEXT", PNG_A: "A TEXT"})
    with stub.client() as client, time_budget(GUARD):
        # a loopback host would be refused by the client's own downloads (allow_private_urls=False): sent as is
        pages = list(read_documents(client, [RemoteImage(URL), ("a.png", PNG_A)], on_error="raise"))
    assert [(page.source, page.text, page.total_pages) for page in pages] == [
        (URL, "URL TEXT", 1),
        ("a.png", "A TEXT", 1),
    ]
    assert stub.seen[0] == URL or URL in stub.seen


def test_remote_image_refuses_what_is_not_a_url_and_hides_credentials() -> None:
    for bad in ("scans/a.png", "file:///etc/passwd", "ftp://example.com/a.png", "data:image/png;base64,AAAA"):
        with pytest.raises(InvalidArgumentError, match="RemoteImage takes an http"):
            RemoteImage(bad)
    secret = RemoteImage("https://user:hunter2@example.com/a.png")
    assert "hunter2" not in repr(secret) and "hunter2" not in describe_sources([secret])
    [item] = expand_sources(secret)
    assert item.label == "https://example.com/a.png" and item.remote == secret.url and item.url is None
    assert RemoteImage(" oss://bucket/a.png ").url == "oss://bucket/a.png"
