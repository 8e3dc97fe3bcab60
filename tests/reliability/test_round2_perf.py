"""Issue 17 (performance at the account's limit): the emulator answers without a Nagle stall, pages and images go
out in their cheapest lossless form and never above their own resolution, results keep no pixels, the pacer keeps
429s away when threads wake up late, the async client prepares small images on the loop, imports are lazy.

Each test failed on the code before its fix (see the commit messages); none is a timed benchmark: the figures are in
``benchmarks/PERFORMANCE.md``.
"""

from __future__ import annotations

import http.client
import json
import time

from qwen_ocr.testing import Emulator

from ._support import numbered_png, time_budget

_NATIVE = "/api/v1/services/aigc/multimodal-generation/generation"


def _body(png: bytes) -> bytes:
    import base64

    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return json.dumps(
        {
            "model": "qwen-vl-ocr",
            "input": {"messages": [{"role": "user", "content": [{"image": url}, {"text": "Read it."}]}]},
            "parameters": {},
        }
    ).encode()


# -- the emulator: one write per reply, TCP_NODELAY ----------------------------------------------------------------


def test_the_emulator_answers_a_keep_alive_connection_without_a_nagle_stall() -> None:
    """Headers and body went out in two writes without TCP_NODELAY: the second waited for the client's delayed ACK
    (~40 ms) on every reply. Ten sequential requests on one connection took >= 0.4 s; now a few milliseconds."""
    body = _body(numbered_png(1))
    with time_budget(20), Emulator() as emu:
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
        try:
            for _ in range(2):  # warm up: the connection, the recording cache
                conn.request("POST", _NATIVE, body=body, headers={"Content-Type": "application/json"})
                assert conn.getresponse().read()
            started = time.perf_counter()
            for _ in range(10):
                conn.request("POST", _NATIVE, body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                assert response.status == 200
                response.read()
            elapsed = time.perf_counter() - started
        finally:
            conn.close()
    assert elapsed < 0.3, f"10 replies on one connection took {elapsed:.3f} s: a Nagle/delayed-ACK stall per reply"
