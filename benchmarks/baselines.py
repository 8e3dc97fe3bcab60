"""Baselines for the "Performance" comparison: what a user would write instead of this client, against the emulator.

Each baseline reads the first ``n_pages`` pages of a scanned PDF through the loopback emulator
(``qwen_ocr.testing.Emulator``) and returns a dict of measurements (see :data:`RESULT_KEYS`):

- :func:`run_vendor_sdk`: the vendor's documented approach. Each page rendered at 300 dpi with pypdfium2, saved as
  PNG, sent inline as a ``data:image/png;base64,`` URL through the official ``dashscope`` SDK
  (``MultiModalConversation.call``, native endpoint), one page after the other.
- :func:`run_langchain_pdfium`: LangChain's ``PyPDFium2Parser(extract_images=True,
  images_parser=LLMImageBlobParser(model=ChatOpenAI(...)))`` on the OpenAI-compatible endpoint.
- :func:`run_zerox`: ``py-zerox`` (pdf2image + poppler, LiteLLM), run in a separate interpreter because it pins
  ``openai<3`` (see ``benchmarks/BASELINES.md`` for the venv and poppler set-up).

Run from the repository root::

    .venv/bin/python benchmarks/baselines.py --pages 20 --latency 0.3 --rpm 1200

It builds the PDF (cardinal.pdf of the test corpus, repeated), starts the emulator in a separate process (so that
the client's CPU time is not mixed with the emulator's), runs each baseline that is available, and prints a
Markdown table and the JSON of the results.

Measuring rules, shared by the three functions:

- ``seconds``: wall time from opening the PDF to the last page's text (imports and the emulator's start excluded);
- ``cpu_ms_per_page``: ``time.process_time()`` (plus the CPU of waited-for child processes, e.g. poppler for zerox)
  over the same span, per page read. Waiting on the network costs no CPU, so this is render + encode + request
  build + response parse only **if the emulator runs in another process**; with an in-process emulator, read
  ``cpu_ms_per_page_calling_thread`` instead (``time.thread_time()`` of the calling thread, (a) and (b) only);
- ``http_requests``, ``responses_by_status``, ``bytes_uploaded``: counted on the client's HTTP transport (a
  ``requests.Session`` subclass for the SDK, ``httpx`` event hooks for LangChain, a wrapped
  ``httpx.AsyncClient.send`` for zerox); ``bytes_per_page`` is the sum of request bodies over the pages read.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

MODEL = "qwen-vl-ocr"
API_KEY = "bench"
VENDOR_DPI = 300
VENDOR_PROMPT = "Read all the text in the image."
"""The text part of the vendor's SDK sample (ignored by the service when ``ocr_options.task`` is set)."""
VENDOR_MIN_PIXELS = 32 * 32 * 3
VENDOR_MAX_PIXELS = 32 * 32 * 8192
ZEROX_DEFAULT_PYTHON = Path("/tmp/baselines-zerox-venv/bin/python")  # see BASELINES.md for the set-up
ZEROX_DEFAULT_POPPLER = Path("/tmp/baselines-poppler/root")  # `apt-get download` + `dpkg -x`
ZEROX_MODEL = "dashscope/qwen-vl-ocr"

RESULT_KEYS = (
    "baseline",  # short name
    "status",  # "ok", "partial" (fewer pages than asked), "failed" (an exception, see "reason") or "not run"
    "reason",  # why it failed or did not run, else None
    "pages_requested",
    "pages",  # pages whose text came back
    "seconds",
    "pages_per_s",
    "http_requests",  # requests sent (retries included)
    "responses_by_status",  # {status: count} as the client saw them
    "bytes_uploaded",  # sum of request body sizes
    "bytes_per_page",  # bytes_uploaded / pages (refused and retried requests included)
    "cpu_ms_per_page",
    "cpu_ms_per_page_calling_thread",  # (a) and (b); None for zerox
    "first_image_size",  # [width, height] of the image in the first request sent (not page 1 under concurrency)
    "page1_text",
    "versions",  # {package: version}
    # run_vendor_sdk only: "prepare_cpu_ms_per_page" (render + PNG + base64; the rest of cpu_ms_per_page is the SDK)
    "notes",  # deviations from the plain recipe and what the baseline does differently
)


# -- measurement helpers ----------------------------------------------------------------------------------------


@dataclass
class _Meter:
    """Counts requests, request body bytes and response statuses on a client transport."""

    requests: int = 0
    bytes_uploaded: int = 0
    responses: dict[int, int] = field(default_factory=dict)
    first_image_size: list[int] | None = None

    def on_request(self, body: bytes | None) -> None:
        self.requests += 1
        self.bytes_uploaded += len(body or b"")
        if self.first_image_size is None and body:
            self.first_image_size = _png_size_in(body)

    def on_response(self, status: int) -> None:
        self.responses[status] = self.responses.get(status, 0) + 1


def _counting_session_class(requests: Any, meter: _Meter) -> Any:
    """A ``requests.Session`` class that tells ``meter`` every request body and response status (the SDK's
    traffic, counted the same way by every vendor baseline)."""

    class CountingSession(requests.Session):
        def send(self, request: Any, **kwargs: Any) -> Any:
            body = request.body
            meter.on_request(body.encode() if isinstance(body, str) else body)
            response = super().send(request, **kwargs)
            meter.on_response(response.status_code)
            return response

    return CountingSession


def _png_size_in(body: bytes) -> list[int] | None:
    """Width and height of the PNG in the first ``base64,`` data URL of a request body, if any."""
    start = body.find(b"base64,")
    if start < 0:
        return None
    head = base64.b64decode(body[start + 7 : start + 7 + 32])
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return [width, height]


@dataclass
class _Clock:
    wall: float = 0.0
    cpu: float = 0.0
    thread_cpu: float = 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def _measure() -> Iterator[_Clock]:
    clock = _Clock()
    wall0, cpu0, thread0, children0 = time.perf_counter(), time.process_time(), time.thread_time(), _children_cpu()
    try:
        yield clock
    finally:
        clock.wall = time.perf_counter() - wall0
        clock.cpu = time.process_time() - cpu0 + _children_cpu() - children0
        clock.thread_cpu = time.thread_time() - thread0


def _versions(*names: str) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _result(
    baseline: str,
    n_pages: int,
    *,
    status: str = "ok",
    reason: str | None = None,
    pages: int = 0,
    clock: _Clock | None = None,
    meter: _Meter | None = None,
    page1_text: str | None = None,
    versions: dict[str, str] | None = None,
    notes: list[str] | None = None,
    thread_cpu: bool = True,
) -> dict[str, Any]:
    per = pages or None
    seconds = clock.wall if clock else None
    if status == "ok" and pages < n_pages:
        status = "partial"
    return {
        "baseline": baseline,
        "status": status,
        "reason": reason,
        "pages_requested": n_pages,
        "pages": pages,
        "seconds": round(seconds, 3) if seconds is not None else None,
        "pages_per_s": round(pages / seconds, 3) if seconds and pages else None,
        "http_requests": meter.requests if meter else None,
        "responses_by_status": dict(sorted(meter.responses.items())) if meter else None,
        "bytes_uploaded": meter.bytes_uploaded if meter else None,
        "bytes_per_page": round(meter.bytes_uploaded / per) if meter and per else None,
        "cpu_ms_per_page": round(clock.cpu * 1000 / per, 1) if clock and per else None,
        "cpu_ms_per_page_calling_thread": (
            round(clock.thread_cpu * 1000 / per, 1) if clock and per and thread_cpu else None
        ),
        "first_image_size": meter.first_image_size if meter else None,
        "page1_text": page1_text,
        "versions": versions or {},
        "notes": notes or [],
    }


# -- (a) the vendor's documented approach: 300 dpi PNG, the dashscope SDK, one page after the other ----------------


def run_vendor_sdk(pdf_path: str | Path, base_url: str, n_pages: int) -> dict[str, Any]:
    """The vendor's documented approach, sequential: render at 300 dpi (pypdfium2), PNG, base64 ``data:`` URL,
    ``dashscope.MultiModalConversation.call(model="qwen-vl-ocr", ocr_options={"task": "text_recognition"})``.

    ``base_url`` is the emulator's root (``http://127.0.0.1:<port>``); the SDK is pointed at ``<base_url>/api/v1``.
    Returns the dict described by :data:`RESULT_KEYS`. A page the service refuses (the SDK returns the error
    response, it does not retry) is not counted in ``pages``.
    """
    versions = _versions("dashscope", "requests", "pypdfium2", "pillow")
    try:
        import dashscope
        import pypdfium2 as pdfium
        import requests
    except ImportError as exc:
        return _result("vendor SDK (dashscope)", n_pages, status="not run", reason=f"import failed: {exc}")

    meter = _Meter()

    CountingSession = _counting_session_class(requests, meter)

    notes = [
        "image sent inline as a data: URL (the SDK uploads local file paths to OSS first; a data: URL is neither a "
        "file:// nor an existing path, so it goes inline)",
        "PNG kept in memory rather than written to disk and read back",
        f"image element carries min_pixels={VENDOR_MIN_PIXELS}, max_pixels={VENDOR_MAX_PIXELS} as in the SDK sample",
        "no retry: the SDK returns error responses, the documented loop prints them and moves on",
    ]
    previous_url = dashscope.base_http_api_url
    dashscope.base_http_api_url = base_url.rstrip("/") + "/api/v1"
    session = CountingSession()
    pages = 0
    page1_text: str | None = None
    failures: list[str] = []
    clock: _Clock | None = None
    prepare_cpu = 0.0
    try:
        with _measure() as clock:
            pdf = pdfium.PdfDocument(str(pdf_path))
            try:
                for index in range(min(n_pages, len(pdf))):
                    page = pdf[index]
                    prepare0 = time.process_time()
                    bitmap = page.render(scale=VENDOR_DPI / 72)
                    image = bitmap.to_pil()
                    buf = io.BytesIO()
                    image.save(buf, format="PNG")
                    bitmap.close()
                    page.close()
                    data_url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
                    del image, buf
                    prepare_cpu += time.process_time() - prepare0
                    response = dashscope.MultiModalConversation.call(
                        model=MODEL,
                        api_key=API_KEY,
                        messages=[
                            {
                                "role": "user",
                                "content": [
                                    {
                                        "image": data_url,
                                        "min_pixels": VENDOR_MIN_PIXELS,
                                        "max_pixels": VENDOR_MAX_PIXELS,
                                    },
                                    {"text": VENDOR_PROMPT},
                                ],
                            }
                        ],
                        ocr_options={"task": "text_recognition"},
                        session=session,
                    )
                    if response.status_code == 200:
                        content = response.output.choices[0].message.content
                        text = "".join(part.get("text", "") for part in content if isinstance(part, dict))
                        pages += 1
                        if index == 0:
                            page1_text = text
                    else:
                        failures.append(f"page {index + 1}: HTTP {response.status_code} {response.code}")
            finally:
                pdf.close()
    except Exception as exc:
        return _result(
            "vendor SDK (dashscope)",
            n_pages,
            status="failed",
            reason=f"{type(exc).__name__}: {exc}",
            pages=pages,
            clock=clock,
            meter=meter,
            page1_text=page1_text,
            versions=versions,
            notes=notes,
        )
    finally:
        dashscope.base_http_api_url = previous_url
        session.close()
    if failures:
        notes.append("failed pages: " + "; ".join(failures[:5]) + (" ..." if len(failures) > 5 else ""))
    result = _result(
        "vendor SDK (dashscope)",
        n_pages,
        pages=pages,
        clock=clock,
        meter=meter,
        page1_text=page1_text,
        versions=versions,
        notes=notes,
    )
    result["prepare_cpu_ms_per_page"] = round(prepare_cpu * 1000 / pages, 1) if pages else None
    return result


# -- (b) LangChain: PyPDFium2Parser + LLMImageBlobParser(ChatOpenAI) ---------------------------------------------


def run_langchain_pdfium(pdf_path: str | Path, base_url: str, n_pages: int) -> dict[str, Any]:
    """LangChain's ``PyPDFium2Parser(extract_images=True, images_parser=LLMImageBlobParser(model=ChatOpenAI(
    base_url=<base_url>/compatible-mode/v1, api_key="x", model="qwen-vl-ocr")))``, pages read lazily in order.

    The parser's defaults are kept (its summarising prompt, ChatOpenAI's retries); the only addition is an
    ``httpx.Client`` with event hooks passed as ``http_client`` to count requests and bytes.
    Returns the dict described by :data:`RESULT_KEYS`.
    """
    versions = _versions("langchain-community", "langchain-core", "langchain-openai", "openai", "pypdfium2", "httpx")
    try:
        import httpx

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community announces its sunset
            from langchain_community.document_loaders.parsers import PyPDFium2Parser
            from langchain_community.document_loaders.parsers.images import LLMImageBlobParser
        from langchain_core.documents.base import Blob
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        return _result("LangChain PyPDFium2Parser", n_pages, status="not run", reason=f"import failed: {exc}")

    meter = _Meter()
    http_client = httpx.Client(
        event_hooks={
            "request": [lambda request: meter.on_request(request.content)],
            "response": [lambda response: meter.on_response(response.status_code)],
        },
        timeout=600,
    )
    model = ChatOpenAI(
        base_url=base_url.rstrip("/") + "/compatible-mode/v1", api_key="x", model=MODEL, http_client=http_client
    )
    parser = PyPDFium2Parser(extract_images=True, images_parser=LLMImageBlobParser(model=model))
    notes = [
        "sends the page's embedded image objects at their native resolution (FPDFImageObj bitmaps), not a render "
        "of the page: the page's /Rotate and any vector text or drawing are not in what the model sees",
        "the PNG bytes are labelled data:image/jpeg (LLMImageBlobParser's hard-coded prefix)",
        "LLMImageBlobParser's default prompt asks for a retrieval summary, not a transcription (kept as is)",
        "one request per image object: a page made of several image strips costs several requests",
    ]
    pages = 0
    page1_text: str | None = None
    clock: _Clock | None = None
    try:
        with _measure() as clock:
            documents = parser.lazy_parse(Blob.from_path(str(pdf_path)))
            try:
                for document in documents:
                    if document.metadata.get("page") == 0:
                        page1_text = document.page_content
                    pages += 1
                    if pages >= n_pages:
                        break
            finally:
                documents.close()  # type: ignore[attr-defined]  # a generator: releases the parser's lock
    except Exception as exc:
        return _result(
            "LangChain PyPDFium2Parser",
            n_pages,
            status="failed",
            reason=f"{type(exc).__name__}: {exc}",
            pages=pages,
            clock=clock,
            meter=meter,
            page1_text=page1_text,
            versions=versions,
            notes=notes,
        )
    finally:
        http_client.close()
    return _result(
        "LangChain PyPDFium2Parser",
        n_pages,
        pages=pages,
        clock=clock,
        meter=meter,
        page1_text=page1_text,
        versions=versions,
        notes=notes,
    )


# -- (c) zerox, in its own interpreter ---------------------------------------------------------------------------


def _poppler_env(poppler: Path | None) -> dict[str, str] | None:
    """The environment that puts poppler's ``pdftocairo`` on PATH, or ``None`` if there is none."""
    env = dict(os.environ)
    if poppler is not None:
        bindir = poppler / "usr" / "bin" if (poppler / "usr" / "bin").is_dir() else poppler
        if not (bindir / "pdftocairo").exists():
            return None
        env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
        libdir = poppler / "usr" / "lib" / "x86_64-linux-gnu"
        if libdir.is_dir():
            env["LD_LIBRARY_PATH"] = f"{libdir}{os.pathsep}{env.get('LD_LIBRARY_PATH', '')}".rstrip(os.pathsep)
        return env
    return env if shutil.which("pdftocairo") else None


def run_zerox(
    pdf_path: str | Path,
    base_url: str,
    n_pages: int,
    *,
    python: str | Path | None = None,
    poppler: str | Path | None = None,
    concurrency: int = 10,
    timeout: float = 1800,
) -> dict[str, Any]:
    """``pyzerox.zerox(file_path=..., model="dashscope/qwen-vl-ocr", api_base=<base_url>/compatible-mode/v1,
    concurrency=10)`` run by the interpreter of a separate venv that has ``py-zerox`` (it needs ``openai<3``).

    ``python`` defaults to ``$ZEROX_PYTHON`` or ``/tmp/baselines-zerox-venv/bin/python``; ``poppler`` (a directory
    with ``pdftocairo``, or an extracted Debian package tree) to ``$ZEROX_POPPLER``,
    ``/tmp/baselines-poppler/root`` or ``pdftocairo`` on PATH. Returns the dict described by :data:`RESULT_KEYS`
    (``status="not run"`` with the reason when either is missing).
    """
    name = "zerox (py-zerox)"
    interpreter = Path(python or os.environ.get("ZEROX_PYTHON") or ZEROX_DEFAULT_PYTHON)
    if not interpreter.exists():
        return _result(
            name,
            n_pages,
            status="not run",
            reason=(
                f"no interpreter with py-zerox at {interpreter}: py-zerox 0.0.7 needs litellm, which needs openai<3, "
                "and .venv has openai 3.52.0 (see BASELINES.md for the separate venv)"
            ),
        )
    poppler_dir = poppler or os.environ.get("ZEROX_POPPLER")
    if poppler_dir is None and ZEROX_DEFAULT_POPPLER.is_dir():
        poppler_dir = ZEROX_DEFAULT_POPPLER
    env = _poppler_env(Path(poppler_dir) if poppler_dir else None)
    if env is None:
        return _result(name, n_pages, status="not run", reason="poppler's pdftocairo not found (pdf2image needs it)")
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the price list from GitHub
    args = {"pdf": str(pdf_path), "base_url": base_url, "n_pages": n_pages, "concurrency": concurrency}
    try:
        proc = subprocess.run(
            [str(interpreter), str(Path(__file__).resolve()), "--zerox-child", json.dumps(args)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _result(name, n_pages, status="failed", reason=f"timed out after {timeout:.0f} s")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return _result(name, n_pages, status="failed", reason=f"exit {proc.returncode}: " + " | ".join(tail))
    result: dict[str, Any] = json.loads(lines[-1])
    if result.get("responses_by_status"):
        result["responses_by_status"] = {int(k): v for k, v in result["responses_by_status"].items()}
    return result


def _zerox_child(raw: str) -> None:
    """Runs inside the zerox venv: read the PDF with zerox, print the result dict as one JSON line."""
    import asyncio

    args = json.loads(raw)
    n_pages = int(args["n_pages"])
    name = "zerox (py-zerox)"
    os.environ.setdefault("DASHSCOPE_API_KEY", "x")
    versions = _versions("py-zerox", "litellm", "openai", "pdf2image", "httpx", "aiohttp")
    meter = _Meter()
    import httpx

    original_send = httpx.AsyncClient.send

    async def counting_send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        meter.on_request(request.content)
        response = await original_send(self, request, **kwargs)
        meter.on_response(response.status_code)
        return response

    httpx.AsyncClient.send = counting_send

    import litellm
    from pyzerox import zerox
    from pyzerox.models import modellitellm

    # qwen-vl-ocr is not in LiteLLM's model list, and zerox refuses models LiteLLM does not know to be vision models.
    litellm.register_model(
        {
            ZEROX_MODEL: {
                "litellm_provider": "dashscope",
                "mode": "chat",
                "supports_vision": True,
                "max_tokens": 8192,
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
            }
        }
    )
    # zerox's constructor checks access with litellm.check_valid_key: a text-only chat ("Hey, how's it going?")
    # sent without api_base (so to the real DashScope, or to DASHSCOPE_API_BASE). The emulator answers a text-only
    # chat with 400 "The user message has no image.", and there is no network here, so the check is skipped.
    modellitellm.litellmmodel.validate_access = lambda self: None  # type: ignore[method-assign]
    notes = [
        f"model {ZEROX_MODEL!r} registered with litellm.register_model(supports_vision=True): zerox refuses a model "
        "LiteLLM does not list as a vision model (NotAVisionModel)",
        "zerox's access check (litellm.check_valid_key, one text-only request, not sent to api_base) skipped: it "
        "fails here (no network; with DASHSCOPE_API_BASE at the emulator, 400 'The user message has no image.')",
        "pages rendered by pdftocairo at 300 dpi scaled to 1056 px high (zerox's default size), all pages first, "
        "then sent with concurrency 10 (zerox's default); its system prompt asks for Markdown",
        "measured inside the zerox interpreter, from the zerox() call on (its start and litellm's import, a few "
        "seconds, excluded); cpu_ms_per_page includes the pdftocairo child processes",
    ]
    select = None
    from PyPDF2 import PdfReader  # a zerox dependency (pypdfium2 is not installed there)

    total = len(PdfReader(args["pdf"]).pages)
    if n_pages < total:
        select = list(range(1, n_pages + 1))
    pages = 0
    page1_text: str | None = None
    clock: _Clock | None = None
    try:
        with _measure() as clock:
            output = asyncio.run(
                zerox(
                    file_path=args["pdf"],
                    model=ZEROX_MODEL,
                    api_base=args["base_url"].rstrip("/") + "/compatible-mode/v1",
                    concurrency=int(args["concurrency"]),
                    select_pages=select,
                )
            )
        pages = sum(1 for page in output.pages if page.content)
        page1_text = output.pages[0].content if output.pages else None
        result = _result(
            name,
            n_pages,
            pages=pages,
            clock=clock,
            meter=meter,
            page1_text=page1_text,
            versions=versions,
            notes=notes,
            thread_cpu=False,
        )
    except Exception as exc:
        result = _result(
            name,
            n_pages,
            status="failed",
            reason=f"{type(exc).__name__}: {exc}",
            clock=clock,
            meter=meter,
            versions=versions,
            notes=notes,
            thread_cpu=False,
        )
    print(json.dumps(result, ensure_ascii=False), flush=True)


# -- (d) the vendor's approach in a naive pool of 8 threads -------------------------------------------------------


def run_vendor_pool(pdf_path: str | Path, base_url: str, n_pages: int, *, workers: int = 8) -> dict[str, Any]:
    """What a user writes to speed up (a): the same 300 dpi PNGs and SDK calls, sent by a ``ThreadPoolExecutor`` of
    ``workers`` threads. Pages are rendered in the main thread (PDFium is not thread-safe) and every page is
    submitted at once, so the pool's queue holds every rendered page until it is sent."""
    from concurrent.futures import ThreadPoolExecutor

    versions = _versions("dashscope", "requests", "pypdfium2", "pillow")
    try:
        import dashscope
        import pypdfium2 as pdfium
        import requests
    except ImportError as exc:
        return _result("vendor SDK, pool of 8", n_pages, status="not run", reason=f"import failed: {exc}")
    meter = _Meter()

    CountingSession = _counting_session_class(requests, meter)

    previous_url = dashscope.base_http_api_url
    dashscope.base_http_api_url = base_url.rstrip("/") + "/api/v1"

    def call(data_url: str) -> bool:
        session = CountingSession()  # one per call: requests.Session is not thread-safe
        try:
            response = dashscope.MultiModalConversation.call(
                model=MODEL,
                api_key=API_KEY,
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"image": data_url, "min_pixels": VENDOR_MIN_PIXELS, "max_pixels": VENDOR_MAX_PIXELS},
                            {"text": VENDOR_PROMPT},
                        ],
                    }
                ],
                ocr_options={"task": "text_recognition"},
                session=session,
            )
        finally:
            session.close()
        return bool(response.status_code == 200)

    clock: _Clock | None = None
    pages = 0
    try:
        with _measure() as clock, ThreadPoolExecutor(max_workers=workers) as pool:
            pdf = pdfium.PdfDocument(str(pdf_path))
            futures = []
            try:
                for index in range(min(n_pages, len(pdf))):
                    page = pdf[index]
                    bitmap = page.render(scale=VENDOR_DPI / 72)
                    buf = io.BytesIO()
                    bitmap.to_pil().save(buf, format="PNG")
                    bitmap.close()
                    page.close()
                    futures.append(
                        pool.submit(call, "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode())
                    )
            finally:
                pdf.close()
            pages = sum(future.result() for future in futures)
    except Exception as exc:
        return _result(
            "vendor SDK, pool of 8", n_pages, status="failed", reason=f"{type(exc).__name__}: {exc}", clock=clock
        )
    finally:
        dashscope.base_http_api_url = previous_url
    notes = ["pages rendered in the main thread (PDFium is not thread-safe), sent by 8 threads; no retry"]
    return _result(
        "vendor SDK, pool of 8", n_pages, pages=pages, clock=clock, meter=meter, versions=versions, notes=notes
    )


# -- (e) LangChain PyPDFLoader(extract_images=True) with an images parser -------------------------------------------


def run_pypdfloader(pdf_path: str | Path, base_url: str, n_pages: int, *, parser: str = "llm") -> dict[str, Any]:
    """LangChain's ``PyPDFLoader(path, extract_images=True, images_parser=...)``: ``LLMImageBlobParser`` over
    ``ChatOpenAI`` (``parser="llm"``) or this project's ``QwenOCRParser`` (``parser="qwen"``), pages read lazily.

    PyPDFLoader extracts each page's image objects with pypdf and reshapes their raw bytes itself; on a 1-bit image
    that fails (``ValueError: cannot reshape array``), whatever the images parser. Reading the pages' images
    ourselves (``QwenOCRLoader``, which renders each page) is the fix."""
    name = "LangChain PyPDFLoader + " + ("LLMImageBlobParser" if parser == "llm" else "QwenOCRParser")
    versions = _versions("langchain-community", "pypdf", "langchain-core")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from langchain_community.document_loaders import PyPDFLoader
            from langchain_community.document_loaders.parsers.images import LLMImageBlobParser
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        return _result(name, n_pages, status="not run", reason=f"import failed: {exc}")
    if parser == "llm":
        images_parser: Any = LLMImageBlobParser(
            model=ChatOpenAI(base_url=base_url.rstrip("/") + "/compatible-mode/v1", api_key="x", model=MODEL)
        )
    else:
        from langchain_qwen_ocr import QwenOCRParser

        images_parser = QwenOCRParser(api_key=API_KEY, base_url=base_url)
    pages = 0
    clock: _Clock | None = None
    try:
        with _measure() as clock:
            for _ in PyPDFLoader(str(pdf_path), extract_images=True, images_parser=images_parser).lazy_load():
                pages += 1
                if pages >= n_pages:
                    break
    except Exception as exc:
        return _result(
            name, n_pages, status="failed", reason=f"{type(exc).__name__}: {exc}"[:200], pages=pages, clock=clock
        )
    return _result(name, n_pages, pages=pages, clock=clock, versions=versions)


BASELINES: dict[str, Callable[[str | Path, str, int], dict[str, Any]]] = {
    "vendor": run_vendor_sdk,
    "vendor_pool": run_vendor_pool,
    "langchain": run_langchain_pdfium,
    "zerox": run_zerox,
    "pypdfloader": run_pypdfloader,
}


# -- the emulator in a separate process, with its counters readable ----------------------------------------------


class EmulatorProcess:
    """``qwen_ocr.testing.Emulator`` served by a child process (this script with ``--serve-emulator``), so that
    the client's CPU time is not mixed with the emulator's; :meth:`stats` reads its counters over a pipe.

    Example::

        with EmulatorProcess(latency=0.3, rpm=1200) as emu:
            result = run_vendor_sdk(pdf, emu.base_url, 20)
            emu.stats()    # {"requests": 20, "responses": {"200": 20}, "throttled": 0, "bytes_received": ...}
            emu.reset()
    """

    def __init__(
        self, *, latency: float = 0.0, rpm: int | None = None, per_second: bool = False, pythonpath: str | None = None
    ) -> None:
        command = [sys.executable, str(Path(__file__).resolve()), "--serve-emulator", "--latency", str(latency)]
        if rpm is not None:
            command += ["--rpm", str(rpm)]
        if per_second:
            command += ["--per-second"]
        env = None
        if pythonpath is not None:  # the emulator of another version of the library (bench_performance.py)
            env = {**os.environ, "PYTHONPATH": pythonpath}
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self._proc.stdout is not None
        self.base_url = self._proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.close()
            raise RuntimeError("the emulator process did not start")

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self._proc.stdout.readline())
        return answer

    def stats(self) -> dict[str, Any]:
        """Requests, responses by status, throttled requests and request body bytes received since the last reset."""
        return self._ask("stats")

    def reset(self) -> None:
        self._ask("reset")

    def close(self) -> None:
        if self._proc.poll() is None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve_emulator(latency: float, rpm: int | None, per_second: bool = False) -> None:
    from qwen_ocr.testing import Emulator

    with Emulator(latency=latency, rpm=rpm, per_second=per_second) as emu:
        print(emu.base_url, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "reset":
                emu.reset()
                print("{}", flush=True)
            elif command == "stats":
                stats = emu.stats
                received = sum(
                    int(value or 0)
                    for entry in emu.request_log
                    for name, value in entry.headers.items()
                    if name.lower() == "content-length"
                )
                answer = {
                    "requests": stats.requests,
                    "responses": {str(k): v for k, v in sorted(stats.responses.items())},
                    "throttled": stats.throttled,
                    "successes": stats.successes,
                    "distinct_images": len(stats.successes_by_image),
                    "bytes_received": received,
                    # when the first and the last request arrived (time.time()), for request spans
                    "first_request": min((entry.time for entry in emu.request_log), default=None),
                    "last_request": max((entry.time for entry in emu.request_log), default=None),
                }
                print(json.dumps(answer), flush=True)
            else:
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)


# -- command line ------------------------------------------------------------------------------------------------


def build_scanned_pdf(pages: int, target: Path) -> Path:
    """An N-page scanned PDF: cardinal.pdf of the corpus repeated (``bench_end_to_end_rss.build_pdf``)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from bench_end_to_end_rss import build_pdf

    build_pdf(pages, target)
    return target


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "–"
    return format(value, spec)


def markdown_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| baseline | status | pages | seconds | pages/s | HTTP requests | responses (emulator) "
        "| KiB uploaded/page | client CPU ms/page | first image sent | page 1 text |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if r["status"] == "not run":
            lines.append(f"| {r['baseline']} | not run: {r['reason']} |" + " |" * 9)
            continue
        responses = r.get("emulator", {}).get("responses") or r.get("responses_by_status") or {}
        kib = r["bytes_per_page"] / 1024 if r.get("bytes_per_page") else None
        size = "x".join(map(str, r["first_image_size"])) if r.get("first_image_size") else None
        text = (r.get("page1_text") or "").replace("\n", " ").replace("|", "\\|")[:40]
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['reason']}"
        lines.append(
            f"| {r['baseline']} | {status} | {r['pages']}/{r['pages_requested']} | {_fmt(r['seconds'], '.2f')} "
            f"| {_fmt(r['pages_per_s'], '.2f')} | {_fmt(r['http_requests'])} "
            f"| {', '.join(f'{k}: {v}' for k, v in responses.items()) or '–'} | {_fmt(kib, ',.0f')} "
            f"| {_fmt(r['cpu_ms_per_page'], '.0f')} | {size or '–'} | {text or '–'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=20, help="pages of the scanned PDF (default 20)")
    parser.add_argument("--latency", type=float, default=0.3, help="emulator latency per request, seconds")
    parser.add_argument("--rpm", type=int, default=1200, help="emulator requests per minute (0: no limit)")
    parser.add_argument(
        "--only", action="append", choices=sorted(BASELINES), help="run only this baseline (repeatable)"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    chosen = args.only or list(BASELINES)
    results = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        pdf = build_scanned_pdf(args.pages, Path(tmp) / f"scan-{args.pages}.pdf")
        with EmulatorProcess(latency=args.latency, rpm=args.rpm or None) as emu:
            for key in chosen:
                emu.reset()
                print(f"running {key} ...", file=sys.stderr, flush=True)
                result = BASELINES[key](pdf, emu.base_url, args.pages)
                result["emulator"] = emu.stats()
                results.append(result)
                print(f"  {result['status']}: {result['pages']} pages in {result['seconds']} s", file=sys.stderr)
    command = "python benchmarks/baselines.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"Produced by: {command.strip()}")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; emulator "
        f"latency {args.latency:g} s, rpm {args.rpm or 'unlimited'}, in a separate process; 1-minute load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after.\n"
    )
    print(markdown_table(results))
    print()
    print("```json")
    print(json.dumps(results, indent=2, ensure_ascii=False))
    print("```")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--zerox-child":
        _zerox_child(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "--serve-emulator":
        serve = argparse.ArgumentParser()
        serve.add_argument("--serve-emulator", action="store_true")
        serve.add_argument("--latency", type=float, default=0.0)
        serve.add_argument("--rpm", type=int, default=None)
        serve.add_argument("--per-second", action="store_true")
        ns = serve.parse_args()
        _serve_emulator(ns.latency, ns.rpm, ns.per_second)
    else:
        raise SystemExit(main())
