"""Shared fixtures: test data, cassette replay, fast retries, and a guard that keeps tests off the network."""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import vcr
from PIL import Image, ImageDraw

from qwen_ocr import RetryPolicy

DATA = Path(__file__).parent / "data"
PROTOCOL = DATA / "protocol"
CASSETTES = Path(__file__).parent / "cassettes"

FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.0, max_delay=0.0, jitter=0.0)
"""Retries without waiting, so retry tests are quick."""

replay = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path", "query"],
    filter_headers=["authorization"],
    decode_compressed_response=True,
)
"""Replays the cassettes built from the recorded live exchanges; never records and never reaches the network."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("DASHSCOPE_API_KEY"):
        return
    skip = pytest.mark.skip(reason="live test: set DASHSCOPE_API_KEY to run it")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host in ("localhost", "::1") or host.startswith("127.") or host.startswith("/")):
        return _real_connect(self, address)
    raise RuntimeError(f"tests must not reach the network (tried to connect to {address!r})")


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every non-loopback connection, except in tests marked ``live``."""
    if "live" in request.keywords:
        return
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture(autouse=True)
def _isolated_settings(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the developer's real key, base URL or credentials file (live tests excepted)."""
    if "live" in request.keywords:
        return
    for name in (
        "DASHSCOPE_API_KEY",
        "DASHSCOPE_BASE_URL",
        # the dashscope SDK's own settings, honoured too
        "DASHSCOPE_API_KEY_FILE_PATH",
        "DASHSCOPE_API_REGION",
        "DASHSCOPE_WORKSPACE_ID",
        "DASHSCOPE_HTTP_BASE_URL",
        "DASHSCOPE_COMPATIBLE_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setattr("qwen_ocr.config.CREDENTIALS_PATH", home / ".alibabacloud" / "credentials")
    monkeypatch.setattr("qwen_ocr.config.SDK_KEY_PATH", home / ".dashscope" / "api_key", raising=False)


def make_image(size: tuple[int, int] = (320, 120), text: str = "Hello OCR", fmt: str = "PNG", **save: Any) -> bytes:
    """A small synthetic image with some text on it, encoded as ``fmt``."""
    im = Image.new("RGB", size, "white")
    ImageDraw.Draw(im).text((10, size[1] // 3), text, fill="black")
    buf = io.BytesIO()
    im.save(buf, format=fmt, **save)
    return buf.getvalue()


@pytest.fixture
def png_bytes() -> bytes:
    """A small PNG with text."""
    return make_image()


@pytest.fixture
def png_path(tmp_path: Path, png_bytes: bytes) -> Path:
    """A small PNG on disk."""
    path = tmp_path / "sample.png"
    path.write_bytes(png_bytes)
    return path


@pytest.fixture
def cassette() -> Callable[[str], Any]:
    """``with cassette("table_parsing"):`` replays one recorded exchange."""

    def use(name: str) -> Any:
        return replay.use_cassette(f"{name}.yaml", allow_playback_repeats=True)

    return use


@pytest.fixture
def fast_retry() -> RetryPolicy:
    return FAST_RETRY


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record of every logger at DEBUG and above."""
    caplog.set_level("DEBUG")
    return caplog


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests look at what was served, not at a log."""


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """A loopback web server of ``directory``'s files for the test's duration; yields its root URL."""
    handler = functools.partial(_QuietFiles, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
