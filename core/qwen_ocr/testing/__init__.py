"""Test helpers for code that uses qwen_ocr: a fake ``httpx`` transport and a loopback emulator of the service.

Example::

    import httpx
    from qwen_ocr import QwenOCR
    from qwen_ocr.testing import Emulator, FakeTransport

    # Unit tests: no server, replies of your choosing, requests recorded.
    transport = FakeTransport(["hello"])
    client = QwenOCR(api_key="test", http_client=httpx.Client(transport=transport))
    assert client.ocr("x.png").text == "hello"

    # Integration tests: a real HTTP server on 127.0.0.1 with recorded replies, rate limits and faults.
    with Emulator(rpm=1200, faults=["500", "drop"], fault_rate=0.1) as emu:
        client = QwenOCR(api_key="k", base_url=emu.base_url)
        client.ocr("table.png", task="table_parsing").tables
        emu.batches.configure(fail_share=0.2)      # its Batch File API (qwen_ocr.testing.batches)

The emulator is also a command: ``python -m qwen_ocr.testing.emulator --port 8000``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._wire import load_recording, task_from_prompt
from .fake import FakeReply as FakeReply
from .fake import FakeRequest as FakeRequest
from .fake import FakeTransport as FakeTransport
from .fake import __all__ as _fake_names
from .fake import fake_compatible_response as fake_compatible_response
from .fake import fake_native_response as fake_native_response

if TYPE_CHECKING:
    from .batches import BatchService as BatchService
    from .batches import BatchStats as BatchStats
    from .emulator import FAULT_KINDS as FAULT_KINDS
    from .emulator import PERMANENT_FAULTS as PERMANENT_FAULTS
    from .emulator import TRANSIENT_FAULTS as TRANSIENT_FAULTS
    from .emulator import Emulator as Emulator
    from .emulator import EmulatorStats as EmulatorStats
    from .emulator import LoggedRequest as LoggedRequest

_LAZY = ("FAULT_KINDS", "PERMANENT_FAULTS", "TRANSIENT_FAULTS", "Emulator", "EmulatorStats", "LoggedRequest")
_LAZY_BATCHES = ("BatchService", "BatchStats")
"""The emulator's names, imported on first use."""

__all__ = ["load_recording", "task_from_prompt"]
__all__ += _fake_names
__all__ += _LAZY
__all__ += _LAZY_BATCHES


def __getattr__(name: str) -> Any:
    # The emulator is imported on first use, so that ``python -m qwen_ocr.testing.emulator`` runs it cleanly.
    if name in _LAZY:
        from . import emulator

        return getattr(emulator, name)
    if name in _LAZY_BATCHES:
        from . import batches

        return getattr(batches, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
