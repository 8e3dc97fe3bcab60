"""Client-side pacing (pure, on a fake clock) and the on-disk cache (through the real clients)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_ocr import AsyncQwenOCR, InvalidArgumentError, QwenOCR, RateLimitError
from qwen_ocr.cache import OCRCache, request_key
from qwen_ocr.pacing import Pacer
from qwen_ocr.reading import read_document
from qwen_ocr.testing import FakeTransport
from tests.conftest import DATA, FAST_RETRY, make_image


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def starts(pacer: Pacer, clock: Clock, n: int) -> list[float]:
    """Start times of ``n`` requests that each wait exactly what the pacer says."""
    out = []
    for _ in range(n):
        out.append(clock.now + pacer.reserve())
    return out


def test_requests_are_spaced_evenly_at_the_headroom_rate() -> None:
    clock = Clock()
    pacer = Pacer(rpm=600, headroom=1.0, burst=1, clock=clock)
    times = starts(pacer, clock, 5)
    assert [round(t - times[0], 6) for t in times] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert pacer.rpm == 600


@settings(max_examples=40, deadline=None)
@given(
    rpm=st.integers(min_value=30, max_value=2000),
    gaps=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=300),
)
def test_no_sixty_second_window_holds_more_than_the_limit(rpm: int, gaps: list[float]) -> None:
    clock = Clock()
    pacer = Pacer(rpm=rpm, clock=clock)
    times: list[float] = []
    for gap in gaps:
        clock.now += gap  # callers arrive whenever they like; the pacer decides when they start
        times.append(clock.now + pacer.reserve())
    times.sort()
    lo = 0
    for hi, t in enumerate(times):
        while times[lo] <= t - 60.0:
            lo += 1
        assert hi - lo + 1 <= rpm


def test_a_burst_is_allowed_after_idle_time_only() -> None:
    clock = Clock()
    pacer = Pacer(rpm=1200, headroom=1.0, burst=5, clock=clock)
    first = starts(pacer, clock, 5)
    assert first == [clock.now] * 5
    sixth = clock.now + pacer.reserve()
    assert sixth == pytest.approx(clock.now + 0.05)
    clock.now += 10  # idle: the burst is available again
    assert pacer.reserve() == 0.0


def test_a_429_pauses_everyone_slows_down_and_successes_recover() -> None:
    clock = Clock()
    pacer = Pacer(rpm=600, headroom=1.0, burst=1, clock=clock)
    pacer.reserve()
    pacer.on_throttled(retry_after=2.0)
    assert pacer.reserve() == pytest.approx(2.0)
    assert pacer.rpm == pytest.approx(480)
    assert pacer.stats.throttled == 1
    for _ in range(20):
        pacer.on_success()
    assert pacer.rpm == 600


def test_an_unknown_limit_is_learned_from_the_first_429() -> None:
    clock = Clock()
    pacer = Pacer(rpm=None, clock=clock)
    for _ in range(100):  # 100 requests in 10 s, unpaced
        assert pacer.reserve() == 0.0
        clock.now += 0.1
    pacer.on_throttled(retry_after=None, default_pause=0.5)
    assert pacer.limit_rpm == pytest.approx(600, rel=0.02)
    assert pacer.reserve() == pytest.approx(0.5)
    gap = pacer.reserve()
    assert gap > 0.5  # paced from now on


def test_the_token_budget_spaces_large_requests() -> None:
    clock = Clock()
    pacer = Pacer(tpm=60_000, headroom=1.0, clock=clock)  # 1,000 tokens per second
    pacer.on_success(output_tokens=1, input_tokens=1)
    delays = [pacer.reserve(tokens=4_000) for _ in range(4)]
    assert delays[0] == 0.0
    assert delays[-1] > 4.0


def test_bad_limits_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="rpm must be a positive number"):
        QwenOCR(api_key="k", rpm=0)
    with pytest.raises(ValueError, match="headroom"):
        Pacer(rpm=10, headroom=1.5)


def test_limits_default_to_the_model_on_dashscope_and_to_none_elsewhere() -> None:
    official = QwenOCR(api_key="k", model="qwen-vl-ocr-latest")
    assert official.pacer is not None and official.pacer.limit_rpm == 1200
    assert QwenOCR(api_key="k").pacer.limit_rpm == 600  # type: ignore[union-attr]
    own = QwenOCR(base_url="http://127.0.0.1:8000/v1", protocol="openai")
    assert own.pacer is not None and own.pacer.limit_rpm is None
    assert QwenOCR(provider="local").pacer is None
    twin = AsyncQwenOCR.from_client(official)
    assert twin.pacer is official.pacer


def test_a_429_from_the_service_reaches_the_pacer() -> None:
    transport = FakeTransport(["ok"], errors=[429])
    client = QwenOCR(api_key="k", retry=FAST_RETRY, http_client=httpx.Client(transport=transport))
    assert client.ocr(make_image()).text == "ok"
    assert client.pacer is not None and client.pacer.stats.throttled == 1
    exhausted = QwenOCR(
        api_key="k", retry=FAST_RETRY, http_client=httpx.Client(transport=FakeTransport(["x"], errors=[429] * 5))
    )
    with pytest.raises(RateLimitError):
        exhausted.ocr(make_image())
    assert exhausted.pacer is not None and exhausted.pacer.stats.throttled == 3


# -- cache -----------------------------------------------------------------------------------------------------


def test_a_second_read_is_served_from_disk(tmp_path: Path) -> None:
    transport = FakeTransport(["first"])
    client = QwenOCR(api_key="sk-secret-key", cache=tmp_path, http_client=httpx.Client(transport=transport))
    image = make_image()
    assert client.ocr(image).metadata.get("cache") is None
    again = client.ocr(image)
    assert again.text == "first" and again.metadata["cache"] == "hit"
    assert len(transport.requests) == 1
    client.ocr(image, task="table_parsing")  # another question: another entry
    assert len(transport.requests) == 2
    assert client.cache is not None and client.cache.hits == 1 and len(client.cache) == 2
    for entry in tmp_path.rglob("*.json"):
        assert "sk-secret-key" not in entry.read_text()


def test_a_new_client_on_the_same_directory_pays_nothing(tmp_path: Path) -> None:
    image = make_image()
    QwenOCR(api_key="k", cache=tmp_path, http_client=httpx.Client(transport=FakeTransport(["x"]))).ocr(image)
    transport = FakeTransport(["y"])
    result = QwenOCR(api_key="k", cache=str(tmp_path), http_client=httpx.Client(transport=transport)).ocr(image)
    assert result.text == "x" and transport.requests == []


def test_a_damaged_entry_is_read_again(tmp_path: Path) -> None:
    transport = FakeTransport(["fresh"])
    client = QwenOCR(api_key="k", cache=tmp_path, http_client=httpx.Client(transport=transport))
    image = make_image()
    client.ocr(image)
    (entry,) = tmp_path.rglob("*.json")
    entry.write_text('{"text": "half a fi')
    assert client.ocr(image).metadata.get("cache") is None
    assert len(transport.requests) == 2
    assert client.ocr(image).metadata["cache"] == "hit"


def test_errors_are_not_cached(tmp_path: Path) -> None:
    transport = FakeTransport(["ok"], errors=[400])
    client = QwenOCR(api_key="k", retry=FAST_RETRY, cache=tmp_path, http_client=httpx.Client(transport=transport))
    with pytest.raises(Exception, match=r"(?i)invalid|bad"):
        client.ocr(make_image())
    assert client.ocr(make_image()).text == "ok"


async def test_the_async_client_shares_the_cache(tmp_path: Path) -> None:
    image = make_image()
    QwenOCR(api_key="k", cache=tmp_path, http_client=httpx.Client(transport=FakeTransport(["sync"]))).ocr(image)
    transport = FakeTransport(["async"])
    async with AsyncQwenOCR(api_key="k", cache=tmp_path, http_client=httpx.AsyncClient(transport=transport)) as c:
        result = await c.ocr(image)
    assert result.text == "sync" and result.metadata["cache"] == "hit" and transport.requests == []


def test_a_rerun_of_a_document_sends_nothing_and_says_so(tmp_path: Path) -> None:
    pdf = DATA / "corpus" / "ocrmypdf" / "multipage.pdf"
    first = FakeTransport(["page text"])
    with QwenOCR(api_key="k", cache=tmp_path, http_client=httpx.Client(transport=first)) as client:
        pages = list(read_document(client, pdf))
    again = FakeTransport(["never"])
    with QwenOCR(api_key="k", cache=tmp_path, http_client=httpx.Client(transport=again)) as client:
        rerun = list(read_document(client, pdf))
    assert len(first.requests) == len(pages) == len(rerun)
    assert again.requests == []
    assert all(p.metadata()["cache"] == "hit" for p in rerun)
    assert all("cache" not in p.metadata() for p in pages)


def test_the_key_covers_path_and_body_and_an_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    assert request_key("/a", b"1") != request_key("/b", b"1") != request_key("/a", b"2")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InvalidArgumentError, match="cache directory"):
        OCRCache(blocker / "sub")


def test_concurrent_writers_leave_whole_entries(tmp_path: Path) -> None:
    cache = OCRCache(tmp_path)
    client = QwenOCR(api_key="k", rpm=None, cache=cache, http_client=httpx.Client(transport=FakeTransport(["t"])))
    images = [make_image(text=f"img {i % 5}") for i in range(40)]
    client.ocr_many(images, max_concurrency=8)
    assert len(cache) == 5
    assert not list(tmp_path.rglob(".tmp-*"))
    asyncio.run(asyncio.sleep(0))


def test_a_stray_429_after_a_few_requests_only_pauses() -> None:
    clock = Clock()
    pacer = Pacer(rpm=None, clock=clock)
    pacer.reserve()
    pacer.on_throttled(retry_after=1.0)
    assert pacer.limit_rpm is None  # one request says nothing about the rate
    assert pacer.reserve() == pytest.approx(1.0)
    clock.now += 1.0
    assert pacer.reserve() == 0.0
