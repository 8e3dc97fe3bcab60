"""One rate limit for the whole cluster: 40 pages over 4 workers hold 120 RPM enforced per second (2 requests in any
second), at close to the bound; independent per-worker pacers would not; the limiter's arithmetic and its batching."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import ray

from qwen_ocr import QwenOCR, RateLimitError
from qwen_ocr.ray import RateLimiter, SharedPacer, read_documents
from qwen_ocr.ray._limiter import create_limiter
from qwen_ocr.testing import Emulator
from tests.ray.conftest import page_png

PAGES = 40
RPM = 120  # enforced by the emulator as 2 requests in any rolling second


def test_forty_pages_on_four_workers_share_one_limit(local_ray: Any) -> None:
    images = [(f"page-{i:02d}.png", page_png(i)) for i in range(PAGES)]
    with Emulator(reader="digest", rpm=RPM, per_second=True) as emu:
        ds = read_documents(
            images, concurrency=4, num_cpus=0.5, rpm=RPM, api_key="sk-test", base_url=emu.base_url, max_retries=4
        )
        rows = ds.take_all()
        stats = emu.stats
        posts = [entry for entry in emu.request_log if entry.method == "POST"]

    assert sorted(row["source"] for row in rows) == [name for name, _ in images]  # every page once
    assert [row["error"] for row in rows] == [None] * PAGES
    assert len({row["text"] for row in rows}) == PAGES
    assert stats.successes == PAGES and set(stats.successes_by_image.values()) == {1}
    assert stats.throttled <= 0.01 * len(posts)  # the shared limit holds: no 429 (at most 1%)
    times = sorted(entry.time for entry in posts)
    span = times[-1] - times[0]
    bound = (PAGES - 1) / (RPM / 60)  # 19.5 s: the fastest the per-second limit allows
    assert span <= bound / 0.85, f"{span:.2f} s for {PAGES} requests: below 85% of the limit's throughput"


def test_independent_pacers_would_send_four_times_too_fast() -> None:
    """The control: four workers, each pacing itself correctly to 120 RPM, together send 8 requests a second."""
    refused = []
    with Emulator(reader="digest", rpm=RPM, per_second=True) as emu:
        clients = [QwenOCR(api_key="sk-test", base_url=emu.base_url, rpm=RPM, max_retries=0) for _ in range(4)]

        def worker(index: int) -> None:
            for page in range(2):
                try:
                    clients[index].ocr(page_png(1000 + 10 * index + page))
                except RateLimitError:
                    refused.append(index)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        for client in clients:
            client.close()
        stats = emu.stats
    assert stats.throttled >= 4 and len(refused) == stats.throttled  # 8 requests in about half a second; 2 allowed
    assert stats.throttled > 0.01 * stats.requests


def test_the_limiter_spaces_starts_within_the_per_second_limit() -> None:
    now = [100.0]
    limiter = RateLimiter(rpm=120, clock=lambda: now[0])
    assert limiter.grant([None, None, None]) == (100.0, [0.0, 0.51, 1.02])  # 2 in any 1 s + 20 ms, as delays
    assert limiter.grant([None], lateness=0.1)[1] == [1.53]  # planned before the lateness was known
    assert limiter.grant([None])[1] == [round(1.53 + 1.12 / 2, 6)]  # a late worker widens everyone's margin
    assert limiter.stats()["granted"] == 5


def test_a_throttled_report_pauses_every_worker() -> None:
    now = [10.0]
    limiter = RateLimiter(rpm=600, clock=lambda: now[0])
    limiter.grant([None])
    limiter.throttled(retry_after=2.0)
    assert limiter.grant([None])[1][0] >= 2.0
    assert limiter.stats()["throttled"] == 1
    assert limiter.stats()["rpm"] < 600 * 0.95  # and slower afterwards


def test_the_token_budget_spaces_large_requests() -> None:
    limiter = RateLimiter(tpm=6000, headroom=1.0, clock=lambda: 0.0)
    first, second = limiter.grant([988, 988])[1]  # 1,500 tokens each (with the expected output) at 100 tokens/s
    assert first == 0.0 and second > 10.0


def test_waiting_requests_are_granted_together(local_ray: Any) -> None:
    limiter = create_limiter(rpm=6000)
    pacer = SharedPacer(limiter)
    barrier = threading.Barrier(16)
    delays: list[float] = []

    def ask() -> None:
        barrier.wait()
        delays.append(pacer.reserve(1000))

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(delays) == 16
    assert pacer.calls < 16  # several start times per round trip
    assert ray.get(limiter.stats.remote())["granted"] == 16
    assert 0.1 < max(delays) < 1.0  # 16 starts at 100 a second, one after the other


def _skewed_clock(offset: float) -> Any:
    return lambda: time.monotonic() + offset


@pytest.mark.parametrize("offset", [-1000.0, 1000.0])
def test_the_machines_clocks_need_not_agree(local_ray: Any, offset: float) -> None:
    # The limiter's machine reads its clock 1,000 s behind (or ahead of) the worker's: start times travel as delays,
    # so the worker is neither unpaced (a plan in its past) nor stalled (a plan in its future).
    limiter = ray.remote(RateLimiter).options(num_cpus=0).remote(rpm=120, clock=_skewed_clock(offset))
    pacer = SharedPacer(limiter)
    first, second, third = (pacer.reserve() for _ in range(3))
    assert first < 0.2
    assert 0.3 < second < 0.7 and 0.8 < third < 1.3  # 2 in any second (+ margin) at 120 RPM
    ray.kill(limiter)


def test_a_429_seen_by_one_worker_slows_all(local_ray: Any) -> None:
    limiter = create_limiter(rpm=600)
    first, second = SharedPacer(limiter), SharedPacer(limiter)  # as two workers hold them
    assert first.reserve() < 0.2
    first.on_throttled(retry_after=0.5)
    assert second.reserve() >= 0.4


def test_retries_ask_the_shared_limiter_too(local_ray: Any) -> None:
    limiter = create_limiter(rpm=600)
    with Emulator(reader="digest") as emu:
        emu.inject("429")
        client = QwenOCR(api_key="sk-test", base_url=emu.base_url, max_retries=2)
        client.pacer = SharedPacer(limiter)
        started = time.monotonic()
        assert client.ocr(page_png(7)).text.startswith("image ")
        elapsed = time.monotonic() - started
        client.close()
    stats = ray.get(limiter.stats.remote())
    assert stats["granted"] == 2 and stats["throttled"] == 1  # the first attempt and its retry, and the 429
    assert elapsed >= 0.4  # the retry waited for the pause the 429 set


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_concurrency_is_checked(bad: Any) -> None:
    from qwen_ocr import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="concurrency"):
        read_documents(["a.png"], concurrency=bad, api_key="sk-test", base_url="http://127.0.0.1:9")


def test_a_lost_limiter_is_found_again_or_reported(local_ray: Any) -> None:
    from qwen_ocr.ray import RateLimiterLostError

    name = "limiter-test-lost"
    limiter = create_limiter(rpm=600, name=name)
    found = SharedPacer(limiter, reconnect=lambda: create_limiter(rpm=600, name=name))
    alone = SharedPacer(limiter)
    assert found.reserve() < 0.2
    ray.kill(limiter)
    time.sleep(0.2)
    assert found.reserve() < 0.2  # a new limiter of that name, made by the first worker that needs it
    with pytest.raises(RateLimiterLostError, match="rate limiter is gone"):
        alone.reserve()  # never unpaced
