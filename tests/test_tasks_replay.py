"""Each of the seven built-in tasks against replayed live/documented exchanges returns its typed view."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from qwen_ocr import AsyncQwenOCR, OCRResult, QwenOCR, Task

POSTER = "https://help-static-aliyun-doc.aliyuncs.com/assets/img/zh-CN/5727078571/p1008252.png"
RECEIPT = "https://duguang-labelling.oss-cn-shanghai.aliyuncs.com/demo_ocr/receipt_zh_demo.jpg"

Cassette = Callable[[str], Any]


def read(cassette: Cassette, name: str, **options: Any) -> OCRResult:
    with cassette(name), QwenOCR(api_key="sk-test", region="cn", model="qwen-vl-ocr-latest") as client:
        return client.ocr(POSTER, **options)


def test_advanced_recognition_gives_lines_with_boxes(cassette: Cassette) -> None:
    result = read(cassette, "advanced_recognition", task="advanced_recognition")
    assert result.task is Task.ADVANCED_RECOGNITION
    assert len(result.lines) == 12
    first = result.lines[0]
    assert first.text == "INTERNATIONAL"
    assert first.location == (1704, 390, 4314, 390, 4314, 675, 1704, 675)
    assert first.rotate_rect == (3009, 532, 285, 2610, 90)
    assert first.bbox == (1704, 390, 4314, 675)
    assert [line.text for line in result.lines][-1] == "Salam!"
    assert result.text.splitlines()[:3] == ["INTERNATIONAL", "MOTHER LANGUAGE", "DAY"]
    assert "rotate_rect" in result.raw_text  # nothing the model said is lost
    assert result.usage.image_tokens == 1862
    assert result.usage.input_tokens == 1895
    assert result.usage.output_tokens == 432
    assert result.usage.total_tokens == 2327
    assert result.request_id == "e72413ae-c147-4904-a63b-c09e87ea133a"
    assert result.finish_reason == "stop"
    assert not result.truncated


def test_key_information_extraction_gives_nested_fields(cassette: Cassette) -> None:
    schema = {"乘车日期": "", "发票": {"发票代码": "", "发票号码": ""}}
    result = read(cassette, "key_information_extraction", schema=schema)
    assert result.task is Task.KEY_INFORMATION_EXTRACTION  # implied by schema=
    assert result.fields == {"乘车日期": "2013-06-29", "发票": {"发票代码": "221021325353", "发票号码": "10283819"}}
    assert result.text.startswith("{")  # fences stripped
    assert result.raw_text.startswith("```json")


def test_key_information_extraction_docs_example(cassette: Cassette) -> None:
    result = read(cassette, "key_information_extraction_docs", task=Task.KEY_INFORMATION_EXTRACTION)
    assert result.fields == {"Ride Date": "2013-06-29", "Invoice Code": "221021325353", "Invoice Number": "10283819"}


def test_text_recognition(cassette: Cassette) -> None:
    result = read(cassette, "text_recognition", task="text_recognition")
    assert result.text.startswith("Audience\nIf you are a system administrator")
    assert result.usage.image_tokens == 1298
    assert result.lines == [] and result.tables == [] and result.fields is None


def test_multi_lan(cassette: Cassette) -> None:
    result = read(cassette, "multi_lan", task="multi_lan")
    assert result.text.splitlines()[0] == "INTERNATIONAL"
    assert "Привіт!" in result.text
    assert result.usage.image_tokens == 8194  # 8388608 / 32**2 + 2: the max_pixels budget


def test_table_parsing_gives_tables_and_keeps_complete_rows_of_a_cut_table(cassette: Cassette) -> None:
    result = read(cassette, "table_parsing", task="table_parsing")
    assert len(result.tables) == 1
    table = result.tables[0]
    assert table.truncated  # the example output stops inside a closing tag
    assert table.rows[1][0].text == "Measurechannel"
    assert table.rows[2][0].text == "V02"
    assert all(len(row) >= 1 for row in table.rows)
    markdown = table.to_markdown(caption=False)  # the first row is a title row (fewer cells): not the header
    assert markdown.splitlines()[0].startswith("| Measurechannel |")
    assert markdown.splitlines()[1].startswith("| --- |")
    assert "| V02 | V1 | Live Load | 147.95 | 0.815 |" in markdown
    assert table.html.startswith("<table><tr>") and table.html.endswith("</table>")


def test_document_parsing_gives_latex(cassette: Cassette) -> None:
    result = read(cassette, "document_parsing", task="document_parsing")
    assert result.latex is not None
    assert result.latex.startswith("\\documentclass{article}")
    assert "```" not in result.latex
    assert "\\section{Abstract}" in result.latex


def test_formula_recognition_gives_formulas(cassette: Cassette) -> None:
    result = read(cassette, "formula_recognition", task="formula_recognition")
    assert len(result.formulas) == 1
    assert result.formulas[0].startswith("\\tilde { Q } ( x )")
    assert not result.formulas[0].startswith("$")


def test_plain_prompt_with_old_usage_shape(cassette: Cassette) -> None:
    result = read(cassette, "plain_prompt", prompt="Read all the text in the image.")
    assert result.task is None
    assert result.text.startswith("读者对象")
    # The 2024 reply has no total_tokens: it is the sum.
    assert result.usage.total_tokens == 1248 + 225
    assert result.usage.image_tokens == 1219


def test_stream_yields_deltas_then_usage_and_finish_reason(cassette: Cassette) -> None:
    with cassette("stream"), QwenOCR(api_key="sk-test", region="cn") as client:
        chunks = list(client.stream(POSTER, prompt="Read all the text in the image."))
    assert len(chunks) == 155
    assert chunks[0].text == "产品"
    assert all(c.finish_reason is None for c in chunks[:-1])
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.image_tokens == 947
    text = "".join(c.text for c in chunks)
    assert text.startswith("产品介绍\n")
    assert chunks[-1].usage.output_tokens >= len(chunks) - 1


async def test_async_tasks_and_stream(cassette: Cassette) -> None:
    with cassette("advanced_recognition"):
        async with AsyncQwenOCR(api_key="sk-test", region="cn") as client:
            result = await client.ocr(POSTER, task="advanced_recognition")
    assert result.lines[0].location == (1704, 390, 4314, 390, 4314, 675, 1704, 675)
    with cassette("stream"):
        async with AsyncQwenOCR(api_key="sk-test", region="cn") as client:
            chunks = [c async for c in client.stream(POSTER)]
    assert chunks[-1].finish_reason == "stop"
    assert "".join(c.text for c in chunks).startswith("产品介绍")


@pytest.mark.parametrize(
    ("task", "cassette_name"),
    [
        ("text_recognition", "text_recognition"),
        ("table_parsing", "table_parsing"),
        ("document_parsing", "document_parsing"),
        ("formula_recognition", "formula_recognition"),
        ("multi_lan", "multi_lan"),
        ("advanced_recognition", "advanced_recognition"),
        ("key_information_extraction", "key_information_extraction"),
    ],
)
async def test_async_every_task(cassette: Cassette, task: str, cassette_name: str) -> None:
    with cassette(cassette_name):
        async with AsyncQwenOCR(api_key="sk-test", region="cn") as client:
            result = await client.ocr(RECEIPT, task=task)
    assert result.task == Task(task)
    assert result.raw_text


def test_in_stream_error_frame_raises_its_typed_error(cassette: Cassette) -> None:
    from qwen_ocr import BadRequestError

    with cassette("in_stream_error"), QwenOCR(api_key="sk-test", region="cn") as client:
        stream = client.stream(POSTER)
        with pytest.raises(BadRequestError) as info:
            list(stream)
    assert info.value.code == "InvalidParameter"
    assert info.value.status_code == 400
    assert info.value.request_id == "7671ecd8-93cc-9ee9-bc89-739f0fd8b809"


def test_recorded_401_and_400(cassette: Cassette) -> None:
    from qwen_ocr import AuthenticationError, BadRequestError

    with (
        cassette("auth_error"),
        QwenOCR(api_key="sk-wrong", region="cn") as client,
        pytest.raises(AuthenticationError) as auth,
    ):
        client.ocr(POSTER)
    assert auth.value.request_id == "a1c0561c-1dfe-98a6-a62f-983577b8bc5e"
    with (
        cassette("parameter_error"),
        QwenOCR(api_key="sk-test", region="cn") as client,
        pytest.raises(BadRequestError, match="Role must be user"),
    ):
        client.ocr(POSTER)


def test_a_stream_that_ends_without_its_final_blank_line_is_flushed() -> None:
    import httpx

    from tests.conftest import PROTOCOL

    body = (PROTOCOL / "recorded" / "multimodal-generation-vl-ocr-sse.response.body.txt").read_bytes().rstrip(b"\n")
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    )
    client = QwenOCR(api_key="k", http_client=httpx.Client(transport=transport))
    chunks = list(client.stream(POSTER))
    assert len(chunks) == 155
    assert chunks[-1].finish_reason == "stop"


def test_a_stream_cut_mid_way_raises_instead_of_returning_half_the_text() -> None:
    import httpx

    from qwen_ocr import ResponseDecodeError
    from tests.conftest import PROTOCOL

    body = (PROTOCOL / "recorded" / "multimodal-generation-vl-ocr-sse.response.body.txt").read_bytes()
    cut = body[: len(body) // 2]
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, content=cut, headers={"content-type": "text/event-stream"})
    )
    client = QwenOCR(api_key="k", max_retries=0, http_client=httpx.Client(transport=transport))
    received: list[str] = []

    def consume() -> None:
        for chunk in client.stream(POSTER):
            received.append(chunk.text)

    with pytest.raises(ResponseDecodeError, match="ended before"):
        consume()
    assert received  # the deltas that did arrive were delivered
