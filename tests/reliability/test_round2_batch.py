"""Reliability round 2, batch and cache defects: bad inputs in ``ocr_many``, a batch that raises, one async client on
several event loops, deeply nested JSON in model output, the cache never failing a call, argument validation, and
the cache key that must name the host.

Every test runs under a hang guard (``time_budget``). Nothing reaches the network: replies come from
``httpx.MockTransport`` / :class:`~qwen_ocr.testing.FakeTransport` or from the loopback emulator.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from qwen_ocr import (
    AsyncQwenOCR,
    BatchOCRError,
    InvalidArgumentError,
    InvalidImageError,
    OCRCache,
    OCRResult,
    QwenOCR,
    QwenOCRError,
    RetryPolicy,
    Task,
)
from qwen_ocr.imaging import PreparedImage
from qwen_ocr.models import model_spec
from qwen_ocr.parsing import parse_json_tolerant
from qwen_ocr.protocols import compatible as compat
from qwen_ocr.protocols import native
from qwen_ocr.protocols.base import OCRCall
from qwen_ocr.results import build_result
from qwen_ocr.testing import Emulator, FakeTransport
from qwen_ocr.testing._wire import image_digest, image_url_of, protocol_of

from ._support import numbered_png, sent_digest, time_budget, wait_until

BUDGET = 30.0  # seconds per test or example: a hang guard
NO_RETRY = RetryPolicy(max_retries=0, initial_delay=0.0, max_delay=0.0, jitter=0.0)


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    with time_budget(BUDGET):
        yield


# ----------------------------------------------------------------------------------------------------------------
# Helpers


def echo_handler(request: httpx.Request) -> httpx.Response:
    """A native or compatible reply whose text is the sent image's key: every result says which input it read."""
    body = json.loads(request.read())
    protocol = protocol_of(request.url.path)
    text = image_digest(image_url_of(protocol, body)) or "?"
    if protocol == "openai":
        return httpx.Response(
            200,
            json={
                "id": "x",
                "model": body.get("model", "qwen-vl-ocr"),
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            },
        )
    return httpx.Response(
        200,
        json={
            "request_id": "r",
            "output": {"choices": [{"finish_reason": "stop", "message": {"content": [{"text": text}]}}]},
        },
    )


async def _async_echo(request: httpx.Request) -> httpx.Response:
    return echo_handler(request)


class Counting:
    """A mock transport handler that counts requests (and delegates to ``echo_handler``)."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.calls += 1
        return echo_handler(request)


def sync_echo_client(**kwargs: Any) -> QwenOCR:
    return QwenOCR(
        api_key="k",
        retry=NO_RETRY,
        rpm=None,
        tpm=None,
        http_client=httpx.Client(transport=httpx.MockTransport(echo_handler)),
        **kwargs,
    )


def async_echo_client(**kwargs: Any) -> AsyncQwenOCR:
    return AsyncQwenOCR(
        api_key="k",
        retry=NO_RETRY,
        rpm=None,
        tpm=None,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(_async_echo)),
        **kwargs,
    )


GOOD = [numbered_png(i) for i in range(6)]
GOOD_KEYS = [sent_digest(png) for png in GOOD]


class Unprintable:
    """An object whose ``repr`` itself fails: an error message about it must not fail in turn."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def bad_inputs(tmp: Path) -> list[Any]:
    """One bad input of every kind: NUL in a path (str and PathLike), a missing file, a directory, empty bytes,
    garbage bytes, and objects of the wrong type."""
    return [
        "scan\0.png",
        Path("scan\0.png"),
        str(tmp / "missing.png"),
        str(tmp),
        b"",
        b"\x00garbage, not an image\xff" * 4,
        bytearray(b"GIF89a-not-really"),
        123,
        1.5,
        None,
        object(),
        {"image": "x.png"},
        ["x.png"],
        Unprintable(),
    ]


def check_batch(results: list[OCRResult | QwenOCRError], inputs: list[Any], good: dict[int, str]) -> None:
    """Every good input's reading in its slot (by the image key it echoes), a typed image error in every other."""
    assert len(results) == len(inputs)
    for index, result in enumerate(results):
        if index in good:
            assert isinstance(result, OCRResult), (index, result)
            assert result.text == good[index]
        else:
            assert isinstance(result, InvalidImageError), (index, inputs[index], result)
            assert result.message


# ----------------------------------------------------------------------------------------------------------------
# 7. Bad inputs stay in their slot; a batch that raises leaves nothing running


def _mixed(tmp: Path) -> tuple[list[Any], dict[int, str]]:
    inputs: list[Any] = []
    good: dict[int, str] = {}
    bad = bad_inputs(tmp)
    for i, item in enumerate(bad):
        if i < len(GOOD):
            good[len(inputs)] = GOOD_KEYS[i]
            inputs.append(GOOD[i])
        inputs.append(item)
    return inputs, good


def test_sync_batch_keeps_every_good_result_around_bad_inputs_of_every_kind(tmp_path: Path) -> None:
    inputs, good = _mixed(tmp_path)
    client = sync_echo_client(max_concurrency=3)
    check_batch(client.ocr_many(inputs, return_exceptions=True), inputs, good)
    with pytest.raises(BatchOCRError) as caught:
        client.ocr_many(inputs)
    check_batch(caught.value.results, inputs, good)


async def test_async_batch_keeps_every_good_result_around_bad_inputs_of_every_kind(tmp_path: Path) -> None:
    inputs, good = _mixed(tmp_path)
    client = async_echo_client(max_concurrency=3)
    check_batch(await client.ocr_many(inputs, return_exceptions=True), inputs, good)
    with pytest.raises(BatchOCRError) as caught:
        await client.ocr_many(inputs)
    check_batch(caught.value.results, inputs, good)


def test_a_nul_path_is_an_invalid_image_error_in_its_slot() -> None:
    client = sync_echo_client()
    results = client.ocr_many([GOOD[0], "a\0b.png", GOOD[1]], return_exceptions=True)
    assert isinstance(results[1], InvalidImageError)
    assert results[1].message
    assert [r.text for r in (results[0], results[2]) if isinstance(r, OCRResult)] == GOOD_KEYS[:2]


def _explode_on(marker: str, exc: BaseException) -> Callable[..., Any]:
    from qwen_ocr import _base

    real = _base.prepare_image

    def prepare(image: Any, **kwargs: Any) -> Any:
        if image == marker:
            raise exc
        return real(image, **kwargs)

    return prepare


@pytest.mark.parametrize(
    "exc", [KeyError("k"), RuntimeError("decoder crashed"), MemoryError(), RecursionError("deep"), OSError(5, "EIO")]
)
def test_any_exception_while_preparing_one_input_stays_in_its_slot(
    exc: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("qwen_ocr._base.prepare_image", _explode_on("boom.png", exc))
    client = sync_echo_client(max_concurrency=2)
    results = client.ocr_many([GOOD[0], "boom.png", GOOD[1]], return_exceptions=True)
    assert isinstance(results[1], InvalidImageError)
    assert type(exc).__name__ in results[1].message
    assert results[1].__cause__ is exc
    assert [r.text for r in (results[0], results[2]) if isinstance(r, OCRResult)] == GOOD_KEYS[:2]

    async def run() -> list[OCRResult | QwenOCRError]:
        return await async_echo_client(max_concurrency=2).ocr_many(
            [GOOD[0], "boom.png", GOOD[1]], return_exceptions=True
        )

    results = asyncio.run(run())
    assert isinstance(results[1], InvalidImageError)
    assert [r.text for r in (results[0], results[2]) if isinstance(r, OCRResult)] == GOOD_KEYS[:2]


class BreakingSource:
    """An iterator of images that fails once, at item ``fail_at`` (and would go on afterwards, as a file reader
    that hit one unreadable entry may)."""

    def __init__(self, images: list[bytes], fail_at: int) -> None:
        self.images = images
        self.fail_at = fail_at
        self.index = 0
        self.lock = threading.Lock()

    def __iter__(self) -> BreakingSource:
        return self

    def __next__(self) -> bytes:
        with self.lock:
            index = self.index
            self.index += 1
        if index == self.fail_at:
            raise RuntimeError("the source broke")
        if index >= len(self.images):
            raise StopIteration
        return self.images[index]


def _qwen_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("qwen-ocr") and t.name != "qwen-ocr-emulator"]


def test_sync_batch_that_raises_cancels_what_is_queued_and_leaves_nothing_running() -> None:
    images = [numbered_png(100 + i) for i in range(12)]
    # Daemon threads an earlier test abandoned on purpose (a closed reading does not wait for a request already on
    # the wire) may still be finishing: only the threads this batch starts are checked.
    earlier = set(_qwen_threads())
    with Emulator(latency=0.3) as emu:
        client = QwenOCR(api_key="k", base_url=emu.base_url, retry=NO_RETRY, rpm=None, tpm=None)
        with pytest.raises(RuntimeError, match="the source broke"):
            client.ocr_many(BreakingSource(images, fail_at=6), max_concurrency=2)
        raised = time.time()
        assert emu.in_flight == 0, "a request was still in flight when ocr_many raised"
        assert not set(_qwen_threads()) - earlier, "a worker thread outlived the batch"
        sent = emu.stats.requests
        # Items 0-3 were started two at a time; 4 and 5 were queued behind them and must not be sent.
        assert sent <= 4, f"{sent} requests: queued items were sent although the batch had failed"
        time.sleep(0.4)
        assert emu.stats.requests == sent
        assert all(entry.time <= raised for entry in emu.request_log)
        client.close()


async def test_async_batch_that_raises_cancels_its_workers() -> None:
    images = [numbered_png(200 + i) for i in range(12)]
    with Emulator(latency=0.3) as emu:
        client = AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=NO_RETRY, rpm=None, tpm=None)
        before = {t for t in asyncio.all_tasks() if not t.done()}
        with pytest.raises(RuntimeError, match="the source broke"):
            await client.ocr_many(BreakingSource(images, fail_at=3), max_concurrency=3)
        raised = time.time()
        leftover = {t for t in asyncio.all_tasks() if not t.done()} - before
        assert not leftover, f"tasks left running after the batch raised: {leftover}"
        sent = emu.stats.requests
        await asyncio.sleep(0.5)  # a worker left running would take item 4, 5, ... now
        assert emu.stats.requests == sent, "requests were sent after ocr_many raised"
        assert all(entry.time <= raised for entry in emu.request_log)
        assert wait_until(lambda: emu.in_flight == 0, timeout=5)
        await client.aclose()


async def test_async_batch_cancelled_from_outside_leaves_nothing_running() -> None:
    images = [numbered_png(300 + i) for i in range(8)]
    with Emulator(latency=0.3) as emu:
        client = AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=NO_RETRY, rpm=None, tpm=None)
        before = {t for t in asyncio.all_tasks() if not t.done()}
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.ocr_many(images, max_concurrency=2), 0.15)
        assert not ({t for t in asyncio.all_tasks() if not t.done()} - before)
        sent = emu.stats.requests
        await asyncio.sleep(0.4)
        assert emu.stats.requests == sent
        await client.aclose()


# ----------------------------------------------------------------------------------------------------------------
# 10. One AsyncQwenOCR on several event loops


def test_one_async_client_under_successive_event_loops() -> None:
    with Emulator() as emu:
        client = AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=NO_RETRY)
        for i in range(3):
            result = asyncio.run(client.ocr(GOOD[i]))
            assert result.text
        asyncio.run(client.aclose())
    assert emu.stats.successes == 3


def test_one_async_client_on_two_threads_each_with_its_own_loop() -> None:
    with Emulator(latency=0.02) as emu:
        client = AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=NO_RETRY)
        errors: list[BaseException] = []
        texts: list[str] = []
        start = threading.Barrier(2)

        def run(offset: int) -> None:
            async def main() -> None:
                start.wait(5)
                for i in range(4):
                    texts.append((await client.ocr(numbered_png(offset + i))).text)
                results = await client.ocr_many([numbered_png(offset + 10 + i) for i in range(4)])
                texts.extend(r.text for r in results if isinstance(r, OCRResult))

            try:
                asyncio.run(main())
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(k * 100,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert not errors, errors
        assert len(texts) == 16
        asyncio.run(client.aclose())
    assert emu.stats.successes == 16


def test_aclose_closes_the_pool_of_a_loop_running_in_another_thread() -> None:
    with Emulator() as emu:
        client = AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=NO_RETRY)
        loop = asyncio.new_event_loop()
        runner = threading.Thread(target=loop.run_forever)
        runner.start()
        try:
            asyncio.run_coroutine_threadsafe(client.ocr(GOOD[0]), loop).result(10)
            (pool,) = [p for lp, p in list(client._pools.items()) if lp is loop]
            asyncio.run(client.aclose())
            assert pool.is_closed
            with pytest.raises(QwenOCRError, match="closed"):
                asyncio.run_coroutine_threadsafe(client.ocr(GOOD[1]), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            runner.join(10)
            loop.close()


def test_a_closed_async_client_says_so_on_any_loop() -> None:
    with Emulator() as emu:
        client = AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=NO_RETRY)
        asyncio.run(client.ocr(GOOD[0]))
        asyncio.run(client.aclose())
        with pytest.raises(QwenOCRError, match="closed"):
            asyncio.run(client.ocr(GOOD[1]))


def test_pools_of_finished_loops_are_let_go() -> None:
    with Emulator() as emu:
        client = AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=NO_RETRY)
        for i in range(5):
            asyncio.run(client.ocr(GOOD[i % len(GOOD)]))
        assert len(client._pools) <= 1  # the pools of the loops that ended were let go
        asyncio.run(client.aclose())


# ----------------------------------------------------------------------------------------------------------------
# 11. Deeply nested JSON in model output; the cache never fails a call; recursive schemas


def nested(depth: int, kind: str = "object") -> str:
    """JSON nested ``depth`` levels: objects, arrays, or both alternating."""
    opens: list[str] = []
    for level in range(depth):
        use_object = kind == "object" or (kind == "mixed" and level % 2 == 0)
        opens.append('{"a":' if use_object else "[")
    closes = "".join("}" if o.startswith("{") else "]" for o in reversed(opens))
    return "".join(opens) + "1" + closes


def _kie_client(transport: FakeTransport, cache: Any = None, protocol: str = "dashscope") -> QwenOCR:
    return QwenOCR(
        api_key="k",
        protocol=protocol,  # type: ignore[arg-type]
        retry=NO_RETRY,
        http_client=httpx.Client(transport=transport),
        cache=cache,
    )


@pytest.mark.parametrize("protocol", ["dashscope", "openai"])
@pytest.mark.parametrize("depth", [50, 900, 5000])
@pytest.mark.parametrize("kind", ["object", "array", "mixed"])
def test_deep_json_reply_keeps_the_raw_text_and_says_it_was_not_parsed(
    protocol: str, depth: int, kind: str, tmp_path: Path
) -> None:
    text = nested(depth, kind)
    transport = FakeTransport([text])
    client = _kie_client(transport, cache=tmp_path / "cache", protocol=protocol)
    for task in ("key_information_extraction", "advanced_recognition"):
        first = client.ocr(GOOD[0], task=task)
        assert first.raw_text == text
        if depth > 100:
            assert first.fields is None
            assert "nested" in first.metadata["parse_error"]
        first.model_dump_json()  # storable and sendable
        again = client.ocr(GOOD[0], task=task)  # from the cache: a paid reading is never bought twice
        assert again.metadata.get("cache") == "hit"
        assert again.raw_text == text
    assert transport.calls == 2


def test_deep_kv_result_of_the_native_protocol_is_not_fatal(tmp_path: Path) -> None:
    deep = json.loads(nested(600))
    body = {
        "request_id": "r",
        "output": {
            "choices": [
                {
                    "finish_reason": "stop",
                    "message": {"content": [{"text": '{"a": 1}', "ocr_result": {"kv_result": deep}}]},
                }
            ]
        },
    }
    transport = FakeTransport([httpx.Response(200, json=body)])
    client = _kie_client(transport, cache=tmp_path)
    result = client.ocr(GOOD[0], task="key_information_extraction")
    assert result.fields is None
    assert "parse_error" in result.metadata
    assert client.ocr(GOOD[0], task="key_information_extraction").metadata["cache"] == "hit"
    assert transport.calls == 1


def test_parse_json_tolerant_never_raises_on_depth() -> None:
    for depth in (10, 999, 1001, 3000, 20000):
        for kind in ("object", "array", "mixed"):
            value = parse_json_tolerant(nested(depth, kind))
            if depth <= 64:
                assert value is not None
    assert parse_json_tolerant("[" * 50000) is None


def test_a_cache_that_cannot_write_never_fails_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    transport = FakeTransport(["hello"])
    client = _kie_client(transport, cache=tmp_path)

    def broken(self: OCRResult, **kwargs: Any) -> str:
        raise RuntimeError("serializer exploded")

    monkeypatch.setattr(OCRResult, "model_dump_json", broken)
    with caplog.at_level(logging.WARNING, logger="qwen_ocr"):
        assert client.ocr(GOOD[0]).text == "hello"
    assert any("cache" in r.getMessage() for r in caplog.records)  # logged, not silent


def test_a_cache_that_cannot_read_never_fails_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    transport = FakeTransport(["hello"])
    client = _kie_client(transport, cache=tmp_path)
    client.ocr(GOOD[0])

    def broken(cls: type[OCRResult], data: Any, **kwargs: Any) -> OCRResult:
        raise RecursionError("too deep")

    monkeypatch.setattr(OCRResult, "model_validate_json", classmethod(broken))
    with caplog.at_level(logging.WARNING, logger="qwen_ocr"):
        assert client.ocr(GOOD[0]).text == "hello"
    assert transport.calls == 2  # a miss, read again


def test_a_cache_entry_that_cannot_be_decoded_is_a_miss(tmp_path: Path) -> None:
    transport = FakeTransport(["hello"])
    client = _kie_client(transport, cache=tmp_path)
    client.ocr(GOOD[0])
    (entry,) = [p for p in tmp_path.glob("??/*.json")]
    entry.write_text('{"text": ' + nested(5000) + "}")
    assert client.ocr(GOOD[0]).text == "hello"
    assert transport.calls == 2
    assert client.ocr(GOOD[0]).metadata["cache"] == "hit"


def test_a_cache_object_that_raises_never_fails_the_call(tmp_path: Path) -> None:
    class Broken(OCRCache):
        def get(self, key: str) -> OCRResult | None:
            raise RuntimeError("disk on fire")

        def put(self, key: str, result: OCRResult) -> None:
            raise RuntimeError("disk on fire")

    transport = FakeTransport(["hello"])
    client = _kie_client(transport, cache=Broken(tmp_path))
    assert client.ocr(GOOD[0]).text == "hello"

    async def run() -> str:
        a = AsyncQwenOCR(
            api_key="k", retry=NO_RETRY, cache=Broken(tmp_path), http_client=httpx.AsyncClient(transport=transport)
        )
        return (await a.ocr(GOOD[0])).text

    assert asyncio.run(run()) == "hello"


class Node(BaseModel):
    name: str = ""
    child: Node | None = None


class Tree(BaseModel):
    title: str = ""
    children: list[Tree] = []


class Holder(BaseModel):
    root: Tree | None = None


Node.model_rebuild()
Tree.model_rebuild()
Holder.model_rebuild()


@pytest.mark.parametrize("schema", [Node, Tree, Holder], ids=["self", "list-of-self", "through-another"])
def test_a_recursive_pydantic_schema_is_refused_before_any_request(schema: type) -> None:
    transport = FakeTransport(["{}"])
    client = _kie_client(transport)
    with pytest.raises(InvalidArgumentError, match="refers to itself") as caught:
        client.ocr(GOOD[0], schema=schema)
    assert caught.value.code == "InvalidSchema"
    assert transport.calls == 0


def test_self_referencing_and_very_deep_dict_schemas_are_refused() -> None:
    transport = FakeTransport(["{}"])
    client = _kie_client(transport)
    loop: dict[str, Any] = {"a": ""}
    loop["self"] = loop
    with pytest.raises(InvalidArgumentError, match="refers to itself"):
        client.ocr(GOOD[0], schema=loop)
    deep: dict[str, Any] = {"a": ""}
    for _ in range(5000):
        deep = {"a": deep}
    with pytest.raises(InvalidArgumentError, match="levels"):
        client.ocr(GOOD[0], schema=deep)
    lists: Any = [{"a": ""}]
    for _ in range(5000):
        lists = [lists]
    with pytest.raises(InvalidArgumentError, match="levels deep"):
        client.ocr(GOOD[0], schema={"items": lists})
    with pytest.raises(InvalidArgumentError, match="schema"):
        client.ocr(GOOD[0], schema=nested(50000))
    assert transport.calls == 0


# ----------------------------------------------------------------------------------------------------------------
# 16. Arguments are validated, with the same message in both clients

BAD_COUNTS: list[Any] = [-1, 0, 1.5, "2", True, False, math.nan, 10**9]


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_ocr_many_max_concurrency_is_validated_alike_in_both_clients(value: Any) -> None:
    sync = sync_echo_client()
    with pytest.raises(InvalidArgumentError, match="max_concurrency") as sync_caught:
        sync.ocr_many([GOOD[0]], max_concurrency=value)

    async def run() -> None:
        await async_echo_client().ocr_many([GOOD[0]], max_concurrency=value)

    with pytest.raises(InvalidArgumentError, match="max_concurrency") as async_caught:
        asyncio.run(run())
    assert str(sync_caught.value) == str(async_caught.value)
    assert "1" in sync_caught.value.message and repr(value) in sync_caught.value.message


def test_ocr_many_refuses_a_single_path_as_the_image_list() -> None:
    with pytest.raises(InvalidArgumentError, match="images"):
        sync_echo_client().ocr_many("page.png")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *[("max_concurrency", v) for v in BAD_COUNTS],
        *[("max_retries", v) for v in [-1, 1.5, "3", True, math.nan, 10**6]],
        *[("rpm", v) for v in [-1, 0, math.nan, math.inf, True, "60"]],
        *[("tpm", v) for v in [-1, 0, math.nan, math.inf, False, "60"]],
        *[("timeout", v) for v in [-1, 0, math.nan, math.inf, True, "30"]],
    ],
)
def test_client_numbers_are_validated_alike_in_both_clients(name: str, value: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=name) as sync_caught:
        QwenOCR(api_key="k", **{name: value})
    with pytest.raises(InvalidArgumentError, match=name) as async_caught:
        AsyncQwenOCR(api_key="k", **{name: value})
    assert str(sync_caught.value) == str(async_caught.value)
    assert repr(value) in sync_caught.value.message


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": 2.5},
        {"initial_delay": -1.0},
        {"max_delay": math.nan},
        {"jitter": 2.0},
        {"max_retry_after": -5.0},
    ],
)
def test_retry_policy_numbers_are_typed_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgumentError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)


def test_good_numbers_still_pass() -> None:
    for kwargs in [
        {"max_concurrency": 1},
        {"max_retries": 0},
        {"rpm": 1.5, "tpm": 10},
        {"rpm": None, "tpm": None},
        {"timeout": None},
        {"timeout": 0.5},
        {"timeout": httpx.Timeout(3.0)},
    ]:
        QwenOCR(api_key="k", **kwargs)  # type: ignore[arg-type]
        AsyncQwenOCR(api_key="k", **kwargs)  # type: ignore[arg-type]
    assert len(sync_echo_client().ocr_many([GOOD[0]], max_concurrency=None)) == 1


# ----------------------------------------------------------------------------------------------------------------
# 17. The cache key names the host, the workspace and everything else that changes the answer


def test_same_image_through_two_hosts_sharing_one_cache_is_read_twice(tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    with Emulator() as test_server, Emulator() as production:
        assert test_server.base_url != production.base_url
        QwenOCR(api_key="k", base_url=test_server.base_url, cache=cache).ocr(GOOD[0])
        second = QwenOCR(api_key="k", base_url=production.base_url, cache=cache).ocr(GOOD[0])
        assert second.metadata.get("cache") != "hit"
        assert test_server.stats.requests == 1
        assert production.stats.requests == 1
        # The same host again: served from the cache.
        third = QwenOCR(api_key="k", base_url=production.base_url, cache=cache).ocr(GOOD[0])
        assert third.metadata.get("cache") == "hit"
        assert production.stats.requests == 1


@pytest.mark.parametrize(
    "change",
    [
        {"workspace": "ws-2"},
        {"protocol": "openai"},
        {"model": "qwen-vl-ocr-latest"},
        {"data_inspection": True},
    ],
)
def test_the_cache_key_changes_with_every_setting_that_changes_the_answer(
    change: dict[str, Any], tmp_path: Path
) -> None:
    counting = Counting()

    def make(**kwargs: Any) -> QwenOCR:
        settings = {"workspace": "ws-1", **kwargs}
        return QwenOCR(
            api_key="k",
            cache=tmp_path,
            retry=NO_RETRY,
            http_client=httpx.Client(transport=httpx.MockTransport(counting)),
            **settings,
        )

    make().ocr(GOOD[0])
    make().ocr(GOOD[0])
    assert counting.calls == 1
    make(**change).ocr(GOOD[0])
    assert counting.calls == 2


@pytest.mark.parametrize(
    "option",
    [
        {"task": "table_parsing"},
        {"prompt": "read it"},
        {"schema": {"Total": ""}},
        {"max_pixels": 100_000},
        {"min_pixels": 1000},
        {"enable_rotate": True},
        {"max_tokens": 50},
        {"temperature": 0.5},
    ],
)
def test_the_cache_key_changes_with_every_option(option: dict[str, Any], tmp_path: Path) -> None:
    counting = Counting()
    client = QwenOCR(
        api_key="k", cache=tmp_path, retry=NO_RETRY, http_client=httpx.Client(transport=httpx.MockTransport(counting))
    )
    client.ocr(GOOD[0])
    client.ocr(GOOD[0], **option)
    assert counting.calls == 2
    client.ocr(GOOD[0], **option)
    assert counting.calls == 2


def test_entries_keyed_the_old_way_are_simply_misses(tmp_path: Path) -> None:
    counting = Counting()
    client = QwenOCR(
        api_key="k", cache=tmp_path, retry=NO_RETRY, http_client=httpx.Client(transport=httpx.MockTransport(counting))
    )
    # What the old scheme stored: SHA-256 over a version, the path under the base URL, and the body.
    call = client._call(GOOD[0])
    request = client._request(call, stream=False)
    digest = hashlib.sha256(b"qwen-ocr-cache/1")
    digest.update(b"\0" + request.path.encode() + b"\0")
    digest.update(request.content())
    OCRCache(tmp_path).put(digest.hexdigest(), OCRResult(text="from a test server"))
    result = client.ocr(GOOD[0])
    assert result.text != "from a test server"
    assert counting.calls == 1


# ----------------------------------------------------------------------------------------------------------------
# Hypothesis: nested JSON in every task that parses JSON, and batches mixing good and bad inputs

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)

JSON_TASKS = [Task.KEY_INFORMATION_EXTRACTION, Task.ADVANCED_RECOGNITION, None]


def _call(task: Task | None) -> OCRCall:
    return OCRCall(
        image=PreparedImage(url="https://x/y.png", original_size=(100, 50), scale=(2.0, 2.0)),
        spec=model_spec("qwen-vl-ocr-latest"),
        task=task,
    )


@st.composite
def deep_json(draw: st.DrawFn) -> str:
    depth = draw(st.integers(min_value=1, max_value=6000))
    pattern = draw(st.lists(st.sampled_from(["{", "["]), min_size=1, max_size=8))
    leaf = draw(st.sampled_from(["1", '"x"', "null", '"null"', "{}", "[]"]))
    opens = [pattern[i % len(pattern)] for i in range(depth)]
    text = "".join('{"k":' if o == "{" else "[" for o in opens) + leaf
    closes = "".join("}" if o == "{" else "]" for o in reversed(opens))
    cut = draw(st.integers(min_value=0, max_value=len(closes)))  # cut off at max_tokens, or whole
    fence = draw(st.booleans())
    body = text + closes[: len(closes) - cut]
    return f"```json\n{body}\n```" if fence else body


@FUZZ
@given(text=deep_json(), task=st.sampled_from(JSON_TASKS))
@example(text=nested(101), task=Task.KEY_INFORMATION_EXTRACTION)
@example(text=nested(6000, "mixed"), task=Task.KEY_INFORMATION_EXTRACTION)
@example(text=nested(6000, "array"), task=Task.ADVANCED_RECOGNITION)
@example(text="[" * 6000, task=Task.ADVANCED_RECOGNITION)
@example(text='{"a": [' * 3000, task=Task.KEY_INFORMATION_EXTRACTION)
def test_deep_json_in_every_task_that_parses_json(text: str, task: Task | None) -> None:
    call = _call(task)
    results = [
        build_result(text, task=task, model="m"),
        native.parse_response(
            200,
            {},
            json.dumps(
                {"output": {"choices": [{"finish_reason": "stop", "message": {"content": [{"text": text}]}}]}}
            ).encode(),
            call,
        ),
        compat.parse_response(
            200,
            {},
            json.dumps(
                {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}
            ).encode(),
            call,
        ),
    ]
    for result in results:
        assert result.raw_text == text
        stored = result.model_dump_json()
        assert OCRResult.model_validate_json(stored).raw_text == text


@FUZZ
@given(depth=st.integers(min_value=1, max_value=900), kind=st.sampled_from(["object", "array", "mixed"]))
def test_deep_kv_result_never_breaks_a_result(depth: int, kind: str) -> None:
    value = json.loads(nested(depth, kind))
    result = build_result("", task=Task.KEY_INFORMATION_EXTRACTION, model="m", kv_result=value)
    OCRResult.model_validate_json(result.model_dump_json())


def _inputs(tmp: Path) -> st.SearchStrategy[list[tuple[bool, Any]]]:
    good = st.integers(min_value=0, max_value=len(GOOD) - 1).map(lambda i: (True, i))
    bad = st.sampled_from(range(len(bad_inputs(tmp)))).map(lambda i: (False, i))
    return st.lists(st.one_of(good, bad), max_size=14)


def _materialise(draw: list[tuple[bool, int]], tmp: Path) -> tuple[list[Any], dict[int, str]]:
    bad = bad_inputs(tmp)
    inputs = [GOOD[i] if ok else bad[i] for ok, i in draw]
    good = {n: GOOD_KEYS[i] for n, (ok, i) in enumerate(draw) if ok}
    return inputs, good


def _outcome(run: Callable[[bool], list[OCRResult | QwenOCRError]], keep: bool) -> list[OCRResult | QwenOCRError]:
    """The batch's results: returned (``return_exceptions=True``, or nothing failed) or carried by the
    ``BatchOCRError`` it raised."""
    try:
        return run(keep)
    except BatchOCRError as exc:
        assert not keep
        return exc.results


@FUZZ
@given(data=st.data(), workers=st.integers(min_value=1, max_value=5), keep=st.booleans())
def test_sync_batches_mixing_good_and_bad_inputs(data: st.DataObject, workers: int, keep: bool, tmp_path: Path) -> None:
    inputs, good = _materialise(data.draw(_inputs(tmp_path)), tmp_path)
    client = sync_echo_client()

    def run(keep: bool) -> list[OCRResult | QwenOCRError]:
        return client.ocr_many(iter(inputs), max_concurrency=workers, return_exceptions=keep)

    check_batch(_outcome(run, keep), inputs, good)


@FUZZ
@given(data=st.data(), workers=st.integers(min_value=1, max_value=5), keep=st.booleans())
def test_async_batches_mixing_good_and_bad_inputs(
    data: st.DataObject, workers: int, keep: bool, tmp_path: Path
) -> None:
    inputs, good = _materialise(data.draw(_inputs(tmp_path)), tmp_path)

    async def batch(keep: bool) -> list[OCRResult | QwenOCRError]:
        client = async_echo_client()
        return await client.ocr_many(iter(inputs), max_concurrency=workers, return_exceptions=keep)

    check_batch(_outcome(lambda keep: asyncio.run(batch(keep)), keep), inputs, good)
