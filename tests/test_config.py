"""Where settings come from: arguments, environment, credentials file; the key never leaks."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from qwen_ocr import AsyncQwenOCR, AuthenticationError, InvalidArgumentError, QwenOCR
from qwen_ocr.config import normalize_base_url, resolve_api_key
from tests.conftest import FAST_RETRY

SECRET = "sk-THIS-IS-A-SECRET-0123456789abcdef"


def test_key_from_argument_env_and_credentials_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_api_key(None) is None
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env")
    assert resolve_api_key(None) == SecretStr("sk-env")
    assert resolve_api_key("sk-arg") == SecretStr("sk-arg")
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\ntype = access_key\ndashscope_api_key = sk-file\n")
    monkeypatch.setattr("qwen_ocr.config.CREDENTIALS_PATH", credentials)
    assert resolve_api_key(None) == SecretStr("sk-file")
    credentials.write_text("[work]\ndashscope_api_key = sk-work\n")
    monkeypatch.setenv("ALIBABA_CLOUD_PROFILE", "work")
    assert resolve_api_key(None) == SecretStr("sk-work")
    credentials.write_text("not an ini file [[[")
    assert resolve_api_key(None) is None


def test_base_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHSCOPE_BASE_URL", "http://127.0.0.1:9000/api/v1")
    assert QwenOCR(api_key="k").base_url == "http://127.0.0.1:9000"
    assert QwenOCR(api_key="k", base_url="http://localhost:1/").base_url == "http://localhost:1"


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="region"):
        QwenOCR(api_key="k", region="mars")
    with pytest.raises(InvalidArgumentError, match="http"):
        normalize_base_url("dashscope.aliyuncs.com")
    with pytest.raises(InvalidArgumentError, match="max_concurrency"):
        QwenOCR(api_key="k", max_concurrency=0)
    with pytest.raises(TypeError, match="AsyncQwenOCR"):
        QwenOCR(api_key="k", http_client=httpx.AsyncClient())  # type: ignore[arg-type]


def test_the_key_never_appears_in_repr_str_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {SECRET}"  # it is sent, only where it belongs
        return httpx.Response(401, json={"code": "InvalidApiKey", "message": "Invalid API-key provided."})

    client = QwenOCR(api_key=SECRET, retry=FAST_RETRY, http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    texts = [repr(client), str(client), repr(client.api_key), str(client.api_key), str(vars(client))]
    with pytest.raises(AuthenticationError) as info:
        client.ocr("https://example.com/a.png")
    texts += [str(info.value), repr(info.value), info.value.message]
    texts += [record.getMessage() for record in caplog.records]
    async_client = AsyncQwenOCR(api_key=SECRET)
    texts += [repr(async_client), str(async_client)]
    assert all(SECRET not in text for text in texts)
    assert "api_key=<set>" in repr(client)
    assert "api_key=<missing>" in repr(QwenOCR())


def test_the_key_never_appears_in_transport_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"failed for {request.url}", request=request)

    client = QwenOCR(api_key=SECRET, retry=FAST_RETRY, http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(Exception) as info:
        client.ocr("https://example.com/a.png")
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


def test_cassettes_hold_no_key() -> None:
    from tests.conftest import CASSETTES

    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert "Bearer sk-" not in text
        assert "sk-" not in text.replace("sk-test", "")
