"""Hypothesis over what ``tests/test_parsers_fuzz.py`` does not fuzz yet: the compatible-mode reply and stream, SSE
framing of both protocols split anywhere, HTML tables and JSON repair on their own, LaTeX, and the image and PDF
validators on arbitrary and on mutated valid files.

Every target must return a result or raise a :class:`~qwen_ocr.QwenOCRError`, never another exception, and never
hang: each example runs under a time budget (``time_budget``: a SIGALRM that raises a ``BaseException``, which no
``except Exception`` in the code under test can swallow). Hypothesis' own deadline is off: timings on a loaded
machine are not what is tested. The examples tried are counted and printed at the end of the module;
``QWEN_OCR_FUZZ_SCALE=20`` multiplies them for a deeper run.
"""

from __future__ import annotations

import io
import itertools
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from qwen_ocr import QwenOCRError, Task, open_document
from qwen_ocr.imaging import prepare_image
from qwen_ocr.parsing import parse_html_tables, parse_json_tolerant
from qwen_ocr.protocols import compatible as compat
from qwen_ocr.protocols import native
from qwen_ocr.structure import latex_to_blocks
from qwen_ocr.testing._wire import compatible_sse_frames, default_usage, fake_native_response, native_sse_frames
from tests.conftest import DATA, make_image
from tests.test_parsers_fuzz import CALLS

from ._support import time_budget

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")  # Pillow notes the corrupt metadata it skips

BUDGET = 20.0  # seconds per example: a hang guard (the slowest example takes well under a second)
TRIED: Counter[str] = Counter()


SCALE = float(os.environ.get("QWEN_OCR_FUZZ_SCALE", "1"))
"""Multiplies every ``max_examples`` (``QWEN_OCR_FUZZ_SCALE=20`` for a deeper run; ``make test`` uses 1)."""


def fuzz(examples: int) -> Callable[[Any], Any]:
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print(f"\n[reliability] fuzz examples tried: {dict(TRIED)}, total {sum(TRIED.values())}")


def survive(name: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn``: its result, or ``None`` when it raised a QwenOCRError; anything else fails the test."""
    TRIED[name] += 1
    with time_budget(BUDGET):
        try:
            return fn(*args)
        except QwenOCRError:
            return None


# ----------------------------------------------------------------------------------------------------------------
# The compatible-mode reply and stream

compat_keys = st.sampled_from(
    ["choices", "message", "delta", "content", "role", "text", "type", "finish_reason", "usage", "prompt_tokens",
     "completion_tokens", "total_tokens", "prompt_tokens_details", "image_tokens", "error", "code", "message",
     "request_id", "id", "object", "image_url"]
)  # fmt: skip
compat_shaped = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=12) | st.floats(allow_nan=True),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(compat_keys, inner, max_size=6),
    max_leaves=50,
)


@fuzz(250)
@given(status=st.sampled_from([200, 200, 200, 400, 401, 429, 500]), body=st.binary(max_size=300))
def test_compatible_parse_on_random_bytes(status: int, body: bytes) -> None:
    for call in CALLS[:3]:
        survive("compatible reply, bytes", compat.parse_response, status, {}, body, call)


@fuzz(250)
@given(data=compat_shaped, call=st.sampled_from(CALLS))
@example(data={"choices": [{"message": {"content": [{"type": "text", "text": None}]}}]}, call=CALLS[0])
@example(data={"choices": [{"message": {"content": 5}, "finish_reason": ["stop"]}], "usage": []}, call=CALLS[3])
def test_compatible_parse_on_shaped_json(data: Any, call: Any) -> None:
    survive("compatible reply, shaped", compat.parse_response, 200, {}, json.dumps(data).encode(), call)


def _feed_all(assembler: Any, pieces: list[bytes]) -> Any:
    chunks = []
    for piece in pieces:
        chunks.extend(assembler.feed(piece))
    chunks.extend(assembler.close())
    return chunks, assembler.result()


@fuzz(250)
@given(chunks=st.lists(st.binary(max_size=80), max_size=8), call=st.sampled_from(CALLS))
def test_compatible_stream_on_random_bytes(chunks: list[bytes], call: Any) -> None:
    survive("compatible stream, bytes", _feed_all, compat.OpenAIStreamAssembler(call), chunks)


frame_kinds = st.sampled_from(["data", "error", "done", "comment", "blank", "bare"])


@fuzz(250)
@given(frames=st.lists(st.tuples(frame_kinds, compat_shaped), max_size=6), call=st.sampled_from(CALLS))
def test_compatible_stream_on_shaped_frames(frames: list[tuple[str, Any]], call: Any) -> None:
    parts = []
    for kind, data in frames:
        body = json.dumps(data)
        parts.append(
            {
                "data": f"data: {body}\n\n",
                "error": f"event: error\ndata: {body}\n\n",
                "done": "data: [DONE]\n\n",
                "comment": ": keep-alive\n\n",
                "blank": "\n\n",
                "bare": f"data:{body}",
            }[kind]
        )
    survive("compatible stream, shaped", _feed_all, compat.OpenAIStreamAssembler(call), ["".join(parts).encode()])


# ----------------------------------------------------------------------------------------------------------------
# SSE framing: a valid stream of either protocol reads the same whatever the network's cuts


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)


@fuzz(200)
@given(text=texts, chunk_chars=st.integers(1, 9), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_native_stream_reads_the_same_however_it_is_cut(text: str, chunk_chars: int, cuts: list[int]) -> None:
    body = fake_native_response(text, request_id="rid")
    raw = b"".join(native_sse_frames(body, chunk_chars=chunk_chars, request_id="rid"))
    outcome = survive("native SSE framing", _feed_all, native.NativeStreamAssembler(CALLS[0]), _cut(raw, cuts))
    assert outcome is not None, "a valid stream must be read"
    chunks, result = outcome
    assert "".join(c.text for c in chunks) == text
    assert result.raw_text == text
    assert chunks[-1].finish_reason == "stop"


@fuzz(200)
@given(text=texts, chunk_chars=st.integers(1, 9), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_compatible_stream_reads_the_same_however_it_is_cut(text: str, chunk_chars: int, cuts: list[int]) -> None:
    usage = default_usage(text)
    raw = b"".join(compatible_sse_frames(text, usage=usage, request_id="rid", chunk_chars=chunk_chars))
    outcome = survive("compatible SSE framing", _feed_all, compat.OpenAIStreamAssembler(CALLS[0]), _cut(raw, cuts))
    assert outcome is not None, "a valid stream must be read"
    chunks, result = outcome
    assert "".join(c.text for c in chunks) == text
    assert result.raw_text == text
    assert chunks[-1].usage.output_tokens == usage.output_tokens


# ----------------------------------------------------------------------------------------------------------------
# HTML tables, JSON repair, LaTeX

html_soup = st.lists(
    st.sampled_from(["<table>", "</table>", "<table border=1>", "<tr>", "</tr>", "<td>", "</td>", "<th>", "</th>",
                     "<thead>", "<tbody>", '<td rowspan="3">', '<td colspan="2">', '<td colspan="99999999">',
                     '<td rowspan="-4">', '<td colspan="1e9">', "<caption>", "</caption>", "x", "&amp;", "&#0;",
                     "&#x110000;", "<br/>", "<", ">", "<!--", "-->", "<![CDATA[", "<script>", "</script>", "\x00"]),
    max_size=60,
)  # fmt: skip


@fuzz(300)
@given(tokens=html_soup)
@example(tokens=["<table>", "<tr>", '<td colspan="99999999">', "x", "</td>", '<td rowspan="99999999">'])
@example(tokens=["<table>"] * 50 + ["<tr>", "<td>"] * 20)
def test_html_tables_on_their_own(tokens: list[str]) -> None:
    tables = survive("HTML tables", parse_html_tables, "".join(tokens))
    for table in tables or []:
        assert isinstance(table["rows"], list)


json_soup = st.lists(
    st.sampled_from(["{", "}", "[", "]", ":", ",", '"', "'", "a", "1", "-", "1e999", "null", "true", "NaN",
                     "Infinity", "\\", "\\u", "\\ud800", "```json\n", "```", " ", "\n", "//", "/*", "*/", "\x00"]),
    max_size=80,
)  # fmt: skip


@fuzz(300)
@given(tokens=json_soup)
@example(tokens=["["] * 5000)
@example(tokens=["{", '"', "a", '"', ":"] * 1000)
@example(tokens=["```json\n", "{", "'", "a", "'", ":", "'", "null", "'"])
def test_json_repair_on_token_soup(tokens: list[str]) -> None:
    survive("JSON repair", parse_json_tolerant, "".join(tokens))


latex_soup = st.lists(
    st.sampled_from([r"\documentclass{article}", r"\begin{document}", r"\end{document}", r"\section{", r"\title{",
                     r"\begin{tabular}{|c|c|}", r"\end{tabular}", r"\begin{table}", r"\end{table}", r"\caption{",
                     r"\multicolumn{99999}{c}{", r"\multirow{-3}{*}{", r"\multicolumn{x}{", "&", r"\\", r"\hline",
                     "{", "}", "$", "$$", r"\[", r"\]", r"\begin{equation}", r"\end{equation}", r"\begin{itemize}",
                     r"\item", r"\end{itemize}", r"\verb|", "|", r"\begin{verbatim}", r"\end{verbatim}", "%", "text",
                     r"\textbf{", r"\\[2pt]", "<table><tr><td>", "</td></tr></table>", r"\def\a{\a}", r"\a",
                     r"\newcommand{\b}{\b}", r"\b", "\n\n", "~", "^", "_"]),
    max_size=60,
)  # fmt: skip


@fuzz(300)
@given(tokens=latex_soup)
@example(tokens=[r"\def\a{\a}", r"\a"])
@example(tokens=["{"] * 3000)
@example(tokens=[r"\begin{tabular}{|c|c|}", r"\multicolumn{99999}{c}{", "x", "}", "&", r"\\"])
def test_latex_on_token_soup(tokens: list[str]) -> None:
    blocks = survive("LaTeX", latex_to_blocks, "".join(tokens))
    assert blocks is not None  # latex_to_blocks reads anything: paragraphs at worst


@fuzz(200)
@given(text=st.text(max_size=300))
def test_latex_on_any_text(text: str) -> None:
    assert survive("LaTeX", latex_to_blocks, text) is not None


# ----------------------------------------------------------------------------------------------------------------
# The image validator


def _encode(fmt: str, **save: Any) -> bytes:
    return make_image((160, 60), text="Fuzz 123", fmt=fmt, **save)


def _rgba_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (64, 40), (255, 0, 0, 128)).save(buf, format="PNG")
    return buf.getvalue()


def _tiff_with_a_broken_second_page() -> bytes:
    """Found by this fuzzer: a TIFF whose second directory has no ImageWidth made Pillow raise TypeError("Missing
    dimensions") when ``prepare_image`` counted its frames: it escaped the image validator untyped."""
    buf = io.BytesIO()
    Image.new("L", (80, 40), 255).save(buf, "TIFF", save_all=True, append_images=[Image.new("L", (40, 80), 0)])
    data = bytearray(buf.getvalue())
    assert data[:4] == b"II*\x00"
    first = int.from_bytes(data[4:8], "little")
    count = int.from_bytes(data[first : first + 2], "little")
    second = int.from_bytes(data[first + 2 + 12 * count : first + 6 + 12 * count], "little")
    for entry in range(int.from_bytes(data[second : second + 2], "little")):
        at = second + 2 + 12 * entry
        if data[at : at + 2] == (256).to_bytes(2, "little"):  # ImageWidth
            data[at : at + 2] = (0x9999).to_bytes(2, "little")  # an unknown tag instead
            return bytes(data)
    raise AssertionError("no ImageWidth tag in the second directory")


TIFF_WITH_A_BROKEN_SECOND_PAGE = _tiff_with_a_broken_second_page()

VALID_IMAGES = {
    "png": _encode("PNG"),
    "jpeg": _encode("JPEG", quality=80),
    "progressive jpeg": _encode("JPEG", progressive=True),
    "bmp": _encode("BMP"),
    "tiff": _encode("TIFF", compression="tiff_deflate"),
    "webp": _encode("WEBP"),
    "rgba png": _rgba_png(),
}


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid file with a few random edits: bytes flipped (often in the header), cut, inserted or removed."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "flip-head", "truncate", "insert", "delete", "zero-run"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif op == "flip-head":
            head = draw(st.integers(0, min(len(data), 64) - 1))
            data[head] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            data[at : at + 32] = bytes(min(32, len(data) - at))
    return bytes(data)


@fuzz(300)
@given(data=st.binary(max_size=600))
@example(data=b"")
@example(data=b"\x89PNG\r\n\x1a\n")
@example(data=b"\xff\xd8\xff")
@example(data=b"RIFF\x00\x00\x00\x00WEBP")
@example(data=b"BM" + b"\xff" * 60)
def test_image_validator_on_arbitrary_bytes(data: bytes) -> None:
    survive("image validator, bytes", prepare_image, data)


@fuzz(400)
@given(data=mutated(list(VALID_IMAGES.values())))
@example(data=TIFF_WITH_A_BROKEN_SECOND_PAGE)
def test_image_validator_on_mutated_images(data: bytes) -> None:
    prepared = survive("image validator, mutated", prepare_image, data)
    if prepared is not None:
        assert prepared.url.startswith("data:image/")
        assert prepared.sent_size is not None and min(prepared.sent_size) > 10


@fuzz(100)
@given(data=mutated(list(VALID_IMAGES.values())))
def test_image_validator_accepts_data_urls_and_paths_alike(data: bytes) -> None:
    import base64

    survive("image validator, data URL", prepare_image, "data:image/png;base64," + base64.b64encode(data).decode())


# ----------------------------------------------------------------------------------------------------------------
# The PDF (and multi-page image) validator: open, count, render the first page


def _pil_pdf() -> bytes:
    buf = io.BytesIO()
    pages = [Image.new("L", (120, 40), 255), Image.new("RGB", (60, 80), "red")]
    pages[0].save(buf, "PDF", save_all=True, append_images=pages[1:], resolution=72)
    return buf.getvalue()


def _multipage_tiff() -> bytes:
    buf = io.BytesIO()
    frames = [Image.new("L", (80, 40), 255), Image.new("1", (40, 80), 1)]
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


VALID_DOCUMENTS = [
    (DATA / "corpus" / "py-pdf" / "001-trivial" / "minimal-document.pdf").read_bytes(),
    _pil_pdf(),
    _multipage_tiff(),
]


def _open_and_render(data: bytes) -> int:
    with open_document(data) as doc:
        count = doc.page_count
        for page in doc:
            page.prepare()
            page.text_layer()
            break
    return count


@fuzz(250)
@given(data=st.binary(max_size=600))
@example(data=b"%PDF-1.7\n")
@example(data=b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n%%EOF")
@example(data=b"II*\x00" + b"\x00" * 40)
def test_document_validator_on_arbitrary_bytes(data: bytes) -> None:
    survive("document validator, bytes", _open_and_render, data)


@fuzz(300)
@given(data=mutated(VALID_DOCUMENTS))
@example(data=TIFF_WITH_A_BROKEN_SECOND_PAGE)
def test_document_validator_on_mutated_documents(data: bytes) -> None:
    survive("document validator, mutated", _open_and_render, data)


def test_the_tasks_are_all_fuzzed() -> None:
    # CALLS (from test_parsers_fuzz) holds one call per task and one without: every reply shape is reached.
    assert {call.task for call in CALLS} == {None, *Task}
