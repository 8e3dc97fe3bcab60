"""One settings model: ``qwen_ocr.options.ClientOptions`` declares every client setting once; the clients,
``from_client``, ``ClientSettings``/``ClientHolder`` and the integrations built on it take exactly these names."""

from __future__ import annotations

import asyncio
import base64
import json
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from qwen_ocr import AsyncQwenOCR, ClientOptions, InvalidArgumentError, OCRCache, QwenOCR, RetryPolicy
from qwen_ocr.config import canonical_region
from qwen_ocr.options import CLIENT_SETTINGS, OCR_OPTIONS, ClientOverrides, OCROptions
from qwen_ocr.settings import ClientHolder, ClientSettings
from qwen_ocr.testing import Emulator
from tests.conftest import make_image

KEY = "sk-settings-model-secret-7731"
HEADER_SECRET = "Basic c2V0dGluZ3M6c2VjcmV0"

# A value of every setting, none of them its default.
EVERY: dict[str, Any] = {
    "api_key": KEY,
    "base_url": "http://127.0.0.1:9/v1",
    "region": "cn",
    "workspace": "ws-1",
    "model": "qwen-vl-ocr-latest",
    "protocol": "openai",
    "provider": "openai",
    "chat_path": "/custom/chat",
    "timeout": 12.5,
    "max_retries": 4,
    "max_concurrency": 3,
    "retry": RetryPolicy(max_retries=4, initial_delay=0.1, max_delay=1.0, jitter=0.0),
    "data_inspection": True,
    "rpm": 120.0,
    "tpm": 50_000.0,
    "cache": None,  # set per test (a directory)
    "default_headers": {"X-Proxy-Auth": HEADER_SECRET},
    "max_response_bytes": 1_000_000,
}


def test_every_setting_is_in_the_fixture_and_differs_from_its_default() -> None:
    assert set(EVERY) == set(CLIENT_SETTINGS)
    for name, field in ClientOptions.model_fields.items():
        assert field.description, f"{name} has no doc line"
        if name != "cache":
            assert EVERY[name] != field.default, name


def test_the_typed_dict_declares_the_same_names_and_types_as_the_model() -> None:
    hints = typing.get_type_hints(ClientOverrides)
    fields = typing.get_type_hints(ClientOptions)
    assert list(hints) == list(ClientOptions.model_fields)  # same names, same order
    for name, hint in hints.items():
        expected = fields[name]
        if name == "api_key":  # the one difference: a plain str is accepted and kept as a SecretStr
            assert hint == str | SecretStr | None and expected == SecretStr | None
        else:
            assert hint == expected, name
    assert set(typing.get_type_hints(OCROptions)) == OCR_OPTIONS


def test_every_setting_reaches_the_client_and_from_client_copies_it(tmp_path: Path) -> None:
    settings = {**EVERY, "cache": str(tmp_path)}
    client = QwenOCR(**settings)
    assert client.api_key is not None and client.api_key.get_secret_value() == KEY
    for name in CLIENT_SETTINGS:
        if name not in ("api_key", "base_url", "cache", "region"):
            assert getattr(client, name) == settings[name], name
    assert client.region == canonical_region(settings["region"])  # kept as the region's id ("cn" -> "cn-beijing")
    assert client.base_url == "http://127.0.0.1:9"  # the /v1 of a self-hosted server is its chat path's
    assert isinstance(client.cache, OCRCache) and client.cache.directory == tmp_path

    twin = AsyncQwenOCR.from_client(client)
    for name in CLIENT_SETTINGS:
        assert getattr(twin, name) == getattr(client, name), name
    assert twin.cache is client.cache and twin.pacer is client.pacer  # one budget, one cache

    # An overridden retry policy is not undone by the copied max_retries (it is part of the policy).
    again = QwenOCR.from_client(client, retry=RetryPolicy(max_retries=7))
    assert again.max_retries == 7
    assert QwenOCR.from_client(client, rpm=60).pacer is not client.pacer
    client.close()
    again.close()


def test_client_settings_has_exactly_the_declared_fields_and_builds_clients_with_all(tmp_path: Path) -> None:
    assert {n: f.default for n, f in ClientSettings.model_fields.items()} == {
        n: f.default for n, f in ClientOptions.model_fields.items()
    }
    settings = ClientSettings(**{**EVERY, "cache": str(tmp_path)})
    with settings.sync_client() as client:
        assert (client.rpm, client.tpm, client.retry, client.data_inspection) == (
            120.0,
            50_000.0,
            EVERY["retry"],
            True,
        )
        assert client.default_headers == EVERY["default_headers"] and client.chat_path == "/custom/chat"
        assert client.max_response_bytes == 1_000_000 and client.cache is not None
    aclient = settings.async_client()
    assert aclient.max_concurrency == 3 and aclient.cache is not None
    asyncio.run(aclient.aclose())


@pytest.mark.parametrize(
    ("build", "wrong", "right"),
    [
        (lambda **kw: QwenOCR(**kw), "tiemout", "timeout"),
        (lambda **kw: AsyncQwenOCR(**kw), "max_concurency", "max_concurrency"),
        (lambda **kw: QwenOCR.from_client(QwenOCR(api_key="k"), **kw), "modle", "model"),
        (lambda **kw: ClientOptions(**kw), "chache", "cache"),
        (lambda **kw: ClientSettings(**kw), "rpn", "rpm"),
        (lambda **kw: ClientHolder(**kw), "default_header", "default_headers"),
    ],
)
def test_an_unknown_name_is_a_typed_error_naming_the_closest(build: Any, wrong: str, right: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"unknown setting '{wrong}' \\(did you mean '{right}'\\?\\)"):
        build(**{wrong: 1})


def test_an_unknown_option_of_a_call_names_the_closest() -> None:
    client = QwenOCR(
        api_key="k", http_client=httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    )
    with pytest.raises(InvalidArgumentError, match="did you mean 'task'"):
        client.ocr("https://example.com/a.png", taks="table_parsing")  # type: ignore[call-arg]


def test_integrations_reject_unknown_names_and_accept_every_setting(tmp_path: Path) -> None:
    from langchain_qwen_ocr import ImageReader, QwenOCRTool
    from llamaindex_qwen_ocr import QwenOCRReader

    for integration in (ImageReader, QwenOCRTool, QwenOCRReader):
        with pytest.raises(InvalidArgumentError, match="did you mean 'cache'"):
            integration(api_key=KEY, cahce=str(tmp_path))
        made = integration(**{**EVERY, "cache": str(tmp_path)})
        for name in CLIENT_SETTINGS:
            if name != "cache":
                assert getattr(made, name) == (SecretStr(KEY) if name == "api_key" else EVERY[name]), name


def test_secrets_stay_out_of_repr_and_dumps_and_values_round_trip(tmp_path: Path) -> None:
    options = ClientOptions(
        api_key=KEY,
        default_headers={"Authorization": HEADER_SECRET},
        timeout=httpx.Timeout(5.0, connect=2.0),
        cache=OCRCache(tmp_path),
    )
    dumped = options.model_dump_json()
    for shown in (repr(options), str(options), dumped, repr(options.model_dump())):
        assert KEY not in shown and HEADER_SECRET not in shown
    data = json.loads(dumped)
    assert data["cache"] == str(tmp_path) and data["timeout"]["connect"] == 2.0
    again = ClientOptions.model_validate(data)
    assert again.timeout == httpx.Timeout(5.0, connect=2.0) and again.cache == str(tmp_path)
    with pytest.raises(ValueError, match="did you mean 'timeout'"):  # model_validate refuses unknown names too
        ClientOptions.model_validate({**data, "timout": 1})
    assert KEY not in repr(QwenOCR(api_key=KEY)) and "sk-" not in repr(ClientSettings(api_key=KEY))


def test_options_overrides_are_the_settings_given() -> None:
    options = ClientOptions(model="qwen-vl-ocr-latest", timeout=60)
    assert options.overrides() == {"model": "qwen-vl-ocr-latest", "timeout": 60.0}
    with QwenOCR(api_key="k", **options.overrides()) as client:
        assert client.model == "qwen-vl-ocr-latest" and client.timeout == 60.0


def test_the_clients_help_lists_every_setting() -> None:
    for cls in (QwenOCR, AsyncQwenOCR):
        for name in CLIENT_SETTINGS:
            assert f"        {name}: " in (cls.__doc__ or ""), (cls.__name__, name)


# -- the disk cache through the integrations: two instances, one request ------------------------------------------


def _png() -> bytes:
    return make_image(text="cache me once")


def test_qwen_ocr_reader_with_cache_sends_one_request_for_two_readers(tmp_path: Path) -> None:
    from llamaindex_qwen_ocr import QwenOCRReader

    image = tmp_path / "page.png"
    image.write_bytes(_png())
    with Emulator() as emu:
        settings = {"api_key": KEY, "base_url": emu.base_url, "cache": str(tmp_path / "cache")}
        first = QwenOCRReader(**settings).load_data(image)
        second = QwenOCRReader(**settings).load_data(image)
        assert emu.stats.successes == 1
    assert [d.text for d in first] == [d.text for d in second] and first[0].text


def test_image_reader_with_cache_sends_one_request_for_two_readers(tmp_path: Path) -> None:
    from langchain_core.messages import HumanMessage

    from langchain_qwen_ocr import ImageReader

    url = "data:image/png;base64," + base64.b64encode(_png()).decode("ascii")
    message = HumanMessage([{"type": "image_url", "image_url": {"url": url}}])
    with Emulator() as emu:
        settings = {"api_key": KEY, "base_url": emu.base_url, "cache": str(tmp_path / "cache")}
        first = ImageReader(**settings).invoke([message])
        second = ImageReader(**settings).invoke([message])
        assert emu.stats.successes == 1
    assert first[-1].content == second[-1].content
