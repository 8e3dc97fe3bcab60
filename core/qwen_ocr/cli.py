"""``qwen-ocr``: read images and documents from the command line.

Examples::

    qwen-ocr read receipt.jpg
    qwen-ocr read scan.pdf --pages 1-3 --format markdown --out results/
    qwen-ocr read table.png --task table_parsing --format html
    qwen-ocr read invoice.png --schema '{"Seller": "", "Total": ""}' --format json
    qwen-ocr estimate scans/*.pdf

Errors are one clear line on stderr and a non-zero exit code (1: the input or the service failed, 2: bad usage).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ._client import QwenOCR
from ._version import __version__
from .errors import QwenOCRError
from .reading import PageResult, read_document
from .results import OCRResult
from .tasks import Task

__all__ = ["main"]

FORMATS = ("text", "markdown", "json", "html")
_EXT = {"text": ".txt", "markdown": ".md", "json": ".jsonl", "html": ".html"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwen-ocr", description="Read images and documents with Qwen-OCR.")
    parser.add_argument("--version", action="version", version=f"qwen-ocr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    read = sub.add_parser("read", help="OCR images, PDFs and multi-page TIFFs (paths or http(s) URLs)")
    read.add_argument("inputs", nargs="+", metavar="FILE_OR_URL")
    read.add_argument("--task", choices=[t.value for t in Task], help="a built-in task (default: plain text)")
    read.add_argument("--schema", help='key_information_extraction fields as JSON, e.g. \'{"Total": ""}\'')
    read.add_argument("--prompt", help="a custom instruction (ignored by the service when --task is set)")
    read.add_argument("--pages", help="pages of a document, 1-based: 1-3,7")
    read.add_argument("--password", help="password of an encrypted PDF")
    read.add_argument("--text-layer", choices=["auto", "never", "only"], default="auto",
                      help="use a PDF page's own text where it is good (auto, default), never, or only")  # fmt: skip
    read.add_argument("--format", choices=FORMATS, default="text")
    read.add_argument("--out", type=Path, help="write one file per input into this directory")
    read.add_argument("--provider", choices=["auto", "dashscope", "openai", "local"], default="auto")
    read.add_argument("--model", help="model id (default qwen-vl-ocr)")
    read.add_argument("--base-url", help="service root, e.g. http://127.0.0.1:8000")
    read.add_argument("--region", choices=["intl", "cn", "us"], default="intl")
    read.add_argument("--concurrency", type=int, default=4, help="pages in flight at once (default 4)")
    read.add_argument("--no-progress", action="store_true", help="no progress line on stderr")

    estimate = sub.add_parser("estimate", help="pages, image tokens and price, before sending anything")
    estimate.add_argument("inputs", nargs="+", metavar="FILE")
    estimate.add_argument("--model", default="qwen-vl-ocr")
    estimate.add_argument("--pages", help="pages of a document, 1-based: 1-3,7")
    estimate.add_argument("--password", help="password of an encrypted PDF")
    estimate.add_argument("--text-layer", choices=["auto", "never", "only"], default="auto")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "estimate":
            return _estimate(args)
        return _read(args)
    except QwenOCRError as exc:
        print(f"qwen-ocr: error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qwen-ocr: interrupted", file=sys.stderr)
        return 130


def _read(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {}
    if args.task:
        options["task"] = args.task
    if args.schema:
        options["schema"] = args.schema  # validated (JSON, depth) by the client
    if args.prompt:
        options["prompt"] = args.prompt
    if args.model:
        options["model"] = args.model
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    client_kwargs: dict[str, Any] = {"provider": args.provider, "region": args.region, "base_url": args.base_url}
    if args.model:
        client_kwargs["model"] = args.model
    failures = 0
    with QwenOCR(**client_kwargs) as client:
        for source in args.inputs:
            pages = list(_pages(client, source, args, options))
            failures += sum(1 for p in pages if not p.ok)
            _emit(source, pages, args)
    return 1 if failures else 0


def _pages(client: QwenOCR, source: str, args: argparse.Namespace, options: dict[str, Any]) -> Iterator[PageResult]:
    if source.lower().startswith(("http://", "https://", "oss://", "data:")):
        page = PageResult(source=source, index=0, label="1", total_pages=1)
        try:
            page.result = client.ocr(source, **options)
        except QwenOCRError as exc:
            page.error = exc
        yield page
        return
    progress = _Progress(source, enabled=not args.no_progress)
    for page in read_document(
        client,
        source,
        pages=args.pages,
        password=args.password,
        text_layer=args.text_layer,
        max_concurrency=args.concurrency,
        **options,
    ):
        progress.update(page)
        yield page
    progress.close()


class _Progress:
    """A one-line progress indicator on stderr, for multi-page inputs on a terminal."""

    def __init__(self, source: str, *, enabled: bool) -> None:
        self.source = source
        self.enabled = enabled and sys.stderr.isatty()
        self.done = 0

    def update(self, page: PageResult) -> None:
        self.done += 1
        if self.enabled and page.total_pages > 1:
            print(f"\r{self.source}: page {self.done}/{page.total_pages}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.done > 1:
            print(file=sys.stderr)


def _emit(source: str, pages: list[PageResult], args: argparse.Namespace) -> None:
    for page in pages:
        if page.error is not None:
            print(f"qwen-ocr: error: {source} page {page.label}: {page.error.message}", file=sys.stderr)
    body = _render(source, pages, args.format, many=len(args.inputs) > 1)
    if args.out is None:
        sys.stdout.write(body)
        return
    name = Path(source.split("?", 1)[0]).stem or "output"
    target = args.out / f"{name}{_EXT[args.format]}"
    target.write_text(body, encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)


def _render(source: str, pages: list[PageResult], fmt: str, *, many: bool) -> str:
    out: list[str] = []
    multi = len(pages) > 1
    for page in pages:
        result = page.result
        if fmt == "json":
            record = {
                "source": source,
                "page": page.index,
                "page_label": page.label,
                "total_pages": page.total_pages,
                "text_source": page.text_source,
                "result": result.model_dump(mode="json") if result is not None else None,
                "error": None
                if page.error is None
                else {
                    "type": type(page.error).__name__,
                    "code": page.error.code,
                    "message": page.error.message,
                },
            }
            out.append(json.dumps(record, ensure_ascii=False) + "\n")
            continue
        if result is None:
            continue
        header = ""
        if many or multi:
            header = f"==> {source} (page {page.label}) <==\n" if multi else f"==> {source} <==\n"
        if fmt == "markdown":
            text = result.to_markdown()
            header = f"## {source}, page {page.label}\n\n" if (many or multi) else ""
        elif fmt == "html":
            text = _html(result)
            header = f"<h2>{_escape(source)}, page {_escape(page.label)}</h2>\n" if (many or multi) else ""
        else:
            text = result.text
        out.append(f"{header}{text.rstrip()}\n" + ("\n" if multi or many else ""))
    return "".join(out)


def _html(result: OCRResult) -> str:
    if result.tables:
        return "\n".join(table.to_html() for table in result.tables)
    return f"<pre>{_escape(result.text)}</pre>"


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def _estimate(args: argparse.Namespace) -> int:
    from .cost import estimate_document

    rows = []
    for source in args.inputs:
        est = estimate_document(source, model=args.model, pages=args.pages, text_layer=args.text_layer,
                                password=args.password)  # fmt: skip
        rows.append((source, est))
    width = max(len(s) for s, _ in rows)
    print(f"{'file':<{width}}  pages  to OCR  image tokens  est. USD")
    total_tokens, total_price = 0, 0.0
    for source, est in rows:
        total_tokens += est.image_tokens
        total_price += est.price_usd
        print(
            f"{source:<{width}}  {est.pages:>5}  {est.pages_to_ocr:>6}  {est.image_tokens:>12,}  {est.price_usd:>8.4f}"
        )
    if len(rows) > 1:
        print(f"{'total':<{width}}  {'':>5}  {'':>6}  {total_tokens:>12,}  {total_price:>8.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
