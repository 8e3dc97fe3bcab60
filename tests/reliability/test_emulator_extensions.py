"""The emulator's switches this suite relies on: every transient and permanent fault kind, faults for one image,
the stall of a ``timeout`` fault, requests in flight and requests abandoned by their client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from qwen_ocr import (
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    PermissionDeniedError,
    QuotaExceededError,
    QwenOCR,
    RateLimitError,
    RetryPolicy,
)
from qwen_ocr.testing import FAULT_KINDS, PERMANENT_FAULTS, TRANSIENT_FAULTS, Emulator

from ._support import numbered_png, sent_digest, wait_until

NO_RETRY = RetryPolicy(max_retries=0)
FAST = RetryPolicy(max_retries=3, initial_delay=0, max_delay=0, jitter=0, max_retry_after=0.01)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(stall=5.0) as emulator:
        yield emulator


def client_for(emu: Emulator, **kwargs: object) -> QwenOCR:
    settings: dict[str, object] = {"api_key": "k", "base_url": emu.base_url, "rpm": None, "tpm": None}
    settings.update(kwargs)
    client = QwenOCR(**settings)  # type: ignore[arg-type]
    client.pacer = None
    return client


def test_the_fault_kinds_split_into_transient_and_permanent() -> None:
    assert set(TRANSIENT_FAULTS) | set(PERMANENT_FAULTS) == set(FAULT_KINDS)
    assert not set(TRANSIENT_FAULTS) & set(PERMANENT_FAULTS)
    assert {
        *("429", "429_retry_after", "500", "503", "drop", "timeout", "garbled", "stream_error", "stream_cut"),
        "insufficient_quota",  # the compatible mode's token throttling (issue 16)
    } == set(TRANSIENT_FAULTS)


def test_429_with_and_without_retry_after(emu: Emulator) -> None:
    image = numbered_png(1)
    with client_for(emu, retry=NO_RETRY) as client:
        emu.inject("429")
        with pytest.raises(RateLimitError) as plain:
            client.ocr(image)
        emu.inject("429_retry_after")
        with pytest.raises(RateLimitError) as hinted:
            client.ocr(image)
    assert plain.value.retry_after is None
    assert hinted.value.retry_after == 1.0
    assert emu.stats.faults == {"429": 1, "429_retry_after": 1}
    assert emu.stats.successes == 0


def test_a_timeout_fault_holds_the_request_past_the_clients_timeout(emu: Emulator) -> None:
    emu.inject("timeout")
    started = time.monotonic()
    with client_for(emu, retry=NO_RETRY, timeout=0.3) as client, pytest.raises(APITimeoutError):
        client.ocr(numbered_png(2))
    assert time.monotonic() - started < 4.5  # the client's 0.3 s, not the emulator's 5 s stall
    # The emulator notices that the client hung up and lets the request go: nothing in flight, nothing billed.
    assert wait_until(lambda: emu.in_flight == 0, timeout=4)
    assert emu.stats.abandoned == 1
    assert emu.stats.successes == 0
    assert emu.stats.responses == {}


def test_a_timeout_fault_is_retried(emu: Emulator) -> None:
    emu.inject("timeout")
    with client_for(emu, retry=FAST, timeout=0.3) as client:
        assert client.ocr(numbered_png(3)).text
    assert emu.stats.requests == 2
    assert emu.stats.successes == 1


@pytest.mark.parametrize(
    ("kind", "error", "status", "code"),
    [
        ("400", BadRequestError, 400, "InvalidParameter"),
        ("401", AuthenticationError, 401, "InvalidApiKey"),
        ("403", PermissionDeniedError, 403, "AccessDenied"),
        ("DataInspectionFailed", ContentFilteredError, 400, "DataInspectionFailed"),
        ("Arrearage", QuotaExceededError, 400, "Arrearage"),
    ],
)
@pytest.mark.parametrize("protocol", ["dashscope", "openai"])
def test_permanent_faults_carry_the_service_codes(
    emu: Emulator, kind: str, error: type[Exception], status: int, code: str, protocol: str
) -> None:
    emu.inject(kind)
    with client_for(emu, retry=FAST, protocol=protocol) as client, pytest.raises(error) as info:
        client.ocr(numbered_png(4))
    assert type(info.value) is error
    assert info.value.status_code == status  # type: ignore[attr-defined]
    if protocol == "dashscope" or kind not in ("401",):
        assert info.value.code == code  # type: ignore[attr-defined]
    assert emu.stats.requests == 1  # never retried


def test_faults_for_one_image_leave_the_others_alone(emu: Emulator) -> None:
    target, other = numbered_png(5), numbered_png(6)
    emu.inject_for(target, "503", "400")
    emu.inject_for(sent_digest(other), "500")  # by digest works the same
    with client_for(emu, retry=FAST) as client:
        assert client.ocr(other).text  # its 500, then a success
        with pytest.raises(BadRequestError):
            client.ocr(target)  # its 503 (retried), then its 400 (not retried)
        assert client.ocr(target).text  # its queue is empty now
    stats = emu.stats
    assert stats.faults == {"500": 1, "503": 1, "400": 1}
    assert stats.successes_by_image == {sent_digest(other): 1, sent_digest(target): 1}


def test_in_flight_counts_requests_being_worked_on() -> None:
    with Emulator(latency=0.6) as emu, client_for(emu) as client:
        thread = threading.Thread(target=client.ocr, args=(numbered_png(7),))
        thread.start()
        assert wait_until(lambda: emu.in_flight == 1, timeout=5)
        thread.join(timeout=10)
        assert emu.in_flight == 0
        assert emu.stats.successes == 1
        assert httpx.get(emu.base_url + "/stats").json()["in_flight"] == 0


def test_a_client_that_hangs_up_during_the_latency_is_not_billed() -> None:
    with Emulator(latency=5.0) as emu, client_for(emu, retry=NO_RETRY, timeout=0.3) as client:
        with pytest.raises(APITimeoutError):
            client.ocr(numbered_png(8))
        assert wait_until(lambda: emu.in_flight == 0, timeout=4)
        stats = emu.stats
    assert stats.abandoned == 1
    assert stats.successes == 0


def test_stop_ends_a_stall_at_once() -> None:
    emu = Emulator(stall=60.0).start()
    emu.inject("timeout")
    result: list[BaseException] = []

    def call() -> None:
        try:
            with client_for(emu, retry=NO_RETRY, timeout=30) as client:
                client.ocr(numbered_png(9))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    assert wait_until(lambda: emu.in_flight == 1, timeout=5)
    started = time.monotonic()
    emu.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - started < 8
    assert result  # the connection was closed without an answer: a typed transport error


def test_unknown_kinds_and_bad_switches_are_refused(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        emu.inject_for(b"x", "404")
    with pytest.raises(ValueError, match="stall"):
        Emulator(stall=-1)
