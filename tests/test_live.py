"""Live tests against the real service; they run only when DASHSCOPE_API_KEY is set (marker ``live``).

Region: set DASHSCOPE_BASE_URL or QWEN_OCR_REGION (intl, cn, us) to match your key.
"""

from __future__ import annotations

import os

import pytest

from qwen_ocr import AsyncQwenOCR, AuthenticationError, QwenOCR

pytestmark = pytest.mark.live

RECEIPT = "https://duguang-labelling.oss-cn-shanghai.aliyuncs.com/demo_ocr/receipt_zh_demo.jpg"
PAGE = "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20241108/ctdzex/biaozhun.jpg"
REGION = os.environ.get("QWEN_OCR_REGION", "intl")


def test_live_plain_and_tasks() -> None:
    with QwenOCR(region=REGION, model="qwen-vl-ocr-latest") as client:
        plain = client.ocr(PAGE)
        assert len(plain.text) > 50
        assert plain.usage.image_tokens > 0
        lines = client.ocr(PAGE, task="advanced_recognition")
        assert lines.lines
        assert all(len(line.location) == 8 for line in lines.lines)
        fields = client.ocr(RECEIPT, schema={"发票": {"发票代码": "", "发票号码": ""}})
        assert isinstance(fields.fields, dict)


def test_live_stream() -> None:
    with QwenOCR(region=REGION) as client:
        chunks = list(client.stream(PAGE))
    assert chunks[-1].finish_reason in ("stop", "length")
    assert "".join(c.text for c in chunks)


async def test_live_async() -> None:
    async with AsyncQwenOCR(region=REGION) as client:
        result = await client.ocr(PAGE, task="text_recognition")
    assert result.text


def test_live_wrong_key() -> None:
    with (
        QwenOCR(api_key="sk-wrong-key-for-test", region=REGION, max_retries=0) as client,
        pytest.raises(AuthenticationError),
    ):
        client.ocr(PAGE)
