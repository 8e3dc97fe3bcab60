"""Hypothesis: on any input, every response parser returns a result or raises a QwenOCRError, nothing else."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qwen_ocr import QwenOCRError, Task
from qwen_ocr.errors import error_from_response
from qwen_ocr.imaging import PreparedImage
from qwen_ocr.models import model_spec
from qwen_ocr.parsing import extract_formulas, parse_html_tables, parse_json_tolerant, strip_fences
from qwen_ocr.protocols import native
from qwen_ocr.protocols.base import OCRCall
from qwen_ocr.protocols.sse import SSEDecoder
from qwen_ocr.results import build_result

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
keys = st.sampled_from(
    [
        "output",
        "choices",
        "message",
        "content",
        "text",
        "ocr_result",
        "words_info",
        "kv_result",
        "location",
        "rotate_rect",
        "usage",
        "finish_reason",
        "code",
        "request_id",
        "image_tokens",
    ]
)
shaped = st.recursive(
    st.none() | st.integers(-5, 5000) | st.text(max_size=10) | st.floats(allow_nan=True),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=60,
)
CALLS = [
    OCRCall(
        image=PreparedImage(url="https://x/y.png", original_size=(100, 50), scale=(2.0, 2.0)),
        spec=model_spec("qwen-vl-ocr"),
        task=task,
    )
    for task in [None, *Task]
]


def _ok(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except QwenOCRError:
        pass


@FUZZ
@given(status=st.sampled_from([200, 200, 200, 400, 401, 429, 500]), body=st.binary(max_size=300))
def test_native_parse_on_random_bytes(status: int, body: bytes) -> None:
    for call in CALLS[:2]:
        _ok(native.parse_response, status, {}, body, call)


@FUZZ
@given(data=shaped, call=st.sampled_from(CALLS))
def test_native_parse_on_shaped_json(data: Any, call: OCRCall) -> None:
    body = json.dumps({"output": data} if not isinstance(data, dict) else data).encode()
    _ok(native.parse_response, 200, {}, body, call)


@FUZZ
@given(chunks=st.lists(st.binary(max_size=80), max_size=8), call=st.sampled_from(CALLS))
def test_native_stream_on_random_bytes(chunks: list[bytes], call: OCRCall) -> None:
    assembler = native.NativeStreamAssembler(call)
    try:
        for chunk in chunks:
            assembler.feed(chunk)
        assembler.close()
        assembler.result()
    except QwenOCRError:
        pass


@FUZZ
@given(frames=st.lists(st.tuples(st.sampled_from(["result", "error", ""]), shaped), max_size=5))
def test_native_stream_on_shaped_frames(frames: list[tuple[str, Any]]) -> None:
    text = "".join(f"id:{i}\nevent:{e}\n:HTTP_STATUS/200\ndata:{json.dumps(d)}\n\n" for i, (e, d) in enumerate(frames))
    assembler = native.NativeStreamAssembler(CALLS[2])
    try:
        assembler.feed(text.encode())
        assembler.close()
    except QwenOCRError:
        pass


@FUZZ
@given(data=st.binary(max_size=400), split=st.integers(0, 400))
def test_sse_decoder_never_fails_and_is_split_independent(data: bytes, split: int) -> None:
    whole = SSEDecoder()
    events = whole.feed(data) + whole.close()
    parts = SSEDecoder()
    pieces = parts.feed(data[:split]) + parts.feed(data[split:]) + parts.close()
    assert [(e.event, e.data, e.status) for e in events] == [(e.event, e.data, e.status) for e in pieces]


@FUZZ
@given(text=st.text(max_size=400))
def test_text_parsers_never_raise(text: str) -> None:
    strip_fences(text)
    parse_json_tolerant(text)
    extract_formulas(text)
    for table in parse_html_tables("<table>" + text):
        assert isinstance(table["rows"], list)
    for task in [None, *Task]:
        build_result(text, task=task, model="m", image_size=(100, 100))


html_tokens = st.sampled_from(["<table>", "</table>", "<tr>", "</tr>", "<td>", "</td>", "<th>", '<td rowspan="3">',
                               '<td colspan="x">', '<td colspan="99999">', "<caption>", "</caption>", "a", "&amp;",
                               "<br>", "<", "```html\n", "```"])  # fmt: skip


@FUZZ
@given(tokens=st.lists(html_tokens, max_size=40))
def test_html_tables_on_tag_soup(tokens: list[str]) -> None:
    result = build_result("".join(tokens), task=Task.TABLE_PARSING, model="m")
    for table in result.tables:
        table.to_markdown()
        table.to_html()
        assert len(table.grid()) == table.n_rows


@FUZZ
@given(status=st.integers(100, 599), body=st.one_of(st.binary(max_size=200), shaped), headers=st.dictionaries(
    st.sampled_from(["Retry-After", "x-request-id", "retry-after"]), st.text(max_size=30), max_size=2))  # fmt: skip
def test_error_mapping_never_raises(status: int, body: Any, headers: dict[str, str]) -> None:
    if not isinstance(body, (bytes, dict)):
        body = json.dumps(body).encode()
    err = error_from_response(status, body, headers)
    assert isinstance(err, QwenOCRError)
    assert err.message
