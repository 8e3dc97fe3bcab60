"""``qwen-ocr``: read images and documents from the command line.

Examples::

    qwen-ocr read receipt.jpg
    qwen-ocr read scan.pdf --pages 1-3 --format markdown --out results/
    qwen-ocr read table.png --task table_parsing --format html
    qwen-ocr read invoice.png --schema '{"Seller": "", "Total": ""}' --format json
    qwen-ocr estimate scans/*.pdf

Inputs are read through :func:`qwen_ocr.read_documents`: one window of ``--concurrency`` pages in flight across
files, so many small files go as fast as one long PDF (a folder or a quoted glob pattern stands for its files).
Every input is read even when another one fails: each failure is one clear line on stderr naming the file, and the
exit code says how the run went (see :data:`EXIT_CODES`). ``--out`` gives every input a file of its own and never
replaces an existing file unless ``--overwrite`` is given (see :data:`OUT_NAMING`).
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
from .documents import parse_pages
from .engine import is_fatal, read_documents
from .errors import QwenOCRError
from .reading import PageResult
from .results import OCRResult
from .sources import SourceItem, expand_sources
from .tasks import Task

__all__ = ["EXIT_CODES", "OUT_NAMING", "main"]

FORMATS = ("text", "markdown", "json", "html")
_EXT = {"text": ".txt", "markdown": ".md", "json": ".jsonl", "html": ".html"}

EXIT_CODES = """\
exit codes:
  0    every input was read (and written)
  1    an input, a page or an output file failed: each is named on stderr, every other input was still read and
       written; or an error that fails every input alike (missing or wrong key, no access to the model, exhausted
       quota, a bad option) stopped the run
  2    bad usage: an unknown option or a bad value; or --out files that already exist without --overwrite
       (checked before anything is read)
  130  interrupted (Ctrl-C): the files written so far are kept"""
"""The exit codes of ``qwen-ocr``, as ``--help`` shows them."""

OUT_NAMING = """\
--out names: each input gets its own file, named after it with the format's extension (scan.pdf -> scan.md). When
several inputs have the same name (a/scan.png, b/scan.png), the first keeps it and the next ones get -2, -3, ...
in the order given (scan.md, scan-2.md). A file that already exists is never replaced unless --overwrite is given:
without it the run stops before reading anything."""
"""How ``--out`` names its files, as ``--help`` shows it."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwen-ocr",
        description="Read images and documents with Qwen-OCR.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qwen-ocr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    read = sub.add_parser(
        "read",
        help="OCR images, PDFs and multi-page TIFFs (paths, folders, patterns or URLs)",
        description="OCR images, PDFs and multi-page TIFFs (paths, folders, glob patterns, http(s), data: or oss:// "
        "URLs). The pages of all inputs are read a window at a time. An input that cannot be read is reported on "
        "stderr and the others are still read.",
        epilog=f"{OUT_NAMING}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    read.add_argument("inputs", nargs="+", metavar="FILE_OR_URL")
    read.add_argument("--task", choices=[t.value for t in Task], help="a built-in task (default: plain text)")
    read.add_argument("--schema", help='key_information_extraction fields as JSON, e.g. \'{"Total": ""}\'')
    read.add_argument("--prompt", help="a custom instruction (ignored by the service when --task is set)")
    read.add_argument("--pages", help="pages of a document, 1-based: 1-3,7")
    read.add_argument("--password", help="password of an encrypted PDF")
    read.add_argument("--text-layer", choices=["auto", "never", "only"],
                      help="use a PDF page's own text where it is good (auto), never, or only; default: auto for "
                      "plain text, never with --task, --schema or --prompt")  # fmt: skip
    read.add_argument("--recursive", action="store_true", help="also read the subfolders of a folder input")
    read.add_argument("--allow-private-urls", action="store_true",
                      help="also download URLs on private, loopback or other non-public hosts")  # fmt: skip
    read.add_argument("--format", choices=FORMATS, default="text")
    read.add_argument("--out", type=Path, help="write one file per input into this directory (names: see below)")
    read.add_argument("--overwrite", action="store_true", help="replace files that already exist in --out")
    read.add_argument("--provider", choices=["auto", "dashscope", "openai", "local"], default="auto")
    read.add_argument("--model", help="model id (default qwen-vl-ocr)")
    read.add_argument("--base-url", help="service root, e.g. http://127.0.0.1:8000")
    read.add_argument("--region", help="intl (default), cn, us or a region id such as eu-central-1")
    read.add_argument("--concurrency", type=int, default=4, help="pages in flight at once, across inputs (default 4)")
    read.add_argument("--no-progress", action="store_true", help="no progress line on stderr")

    estimate = sub.add_parser(
        "estimate",
        help="pages, image tokens and price, before sending anything",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    estimate.add_argument("inputs", nargs="+", metavar="FILE")
    estimate.add_argument("--model", default="qwen-vl-ocr")
    estimate.add_argument("--pages", help="pages of a document, 1-based: 1-3,7")
    estimate.add_argument("--password", help="password of an encrypted PDF")
    estimate.add_argument("--text-layer", choices=["auto", "never", "only"], default="auto")
    estimate.add_argument("--region", help="the region whose prices apply: intl (default), cn, us or a region id")
    estimate.add_argument("--batch", action="store_true", help="price the Batch API (half the real-time price)")
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
    items = list(expand_sources(args.inputs, recursive=args.recursive, argument="inputs"))
    labels = [item.label for item in items]
    targets: list[Path | None] = [None] * len(items)
    if args.out is not None:
        targets = list(_out_paths(labels, args.out, args.format))
        existing = [t for t in targets if t is not None and (t.exists() or t.is_symlink())]
        if existing and not args.overwrite:
            print(
                f"qwen-ocr: error: {_few([str(t) for t in existing])} already "
                f"exist{'s' if len(existing) == 1 else ''}; nothing was read. Pass "
                "--overwrite to replace them, or choose another --out.",
                file=sys.stderr,
            )
            return 2
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            print(
                f"qwen-ocr: error: cannot make the --out directory {args.out}: {exc.strerror or exc}", file=sys.stderr
            )
            return 1
    client_kwargs: dict[str, Any] = {"provider": args.provider, "region": args.region, "base_url": args.base_url}
    if args.model:
        client_kwargs["model"] = args.model
    with QwenOCR(**client_kwargs) as client:
        run = _Run(args, labels, targets)
        try:
            run.read(client, items, options)
        except QwenOCRError as exc:
            if not is_fatal(exc):
                raise
            # An error that fails every input alike: name the input it struck and stop, rather than repeat it.
            failing = run.unfinished()
            _report(labels[failing] if failing < len(labels) else "", exc)
            _not_read(labels[failing + 1 :])
            return 1
    return 1 if run.failures else 0


class _Run:
    """One ``qwen-ocr read``: the pages of each input collected, and the input printed or written once complete."""

    def __init__(self, args: argparse.Namespace, labels: list[str], targets: list[Path | None]) -> None:
        self.args = args
        self.labels = labels
        self.targets = targets
        self.failures = 0
        self.done: set[int] = set()
        self.pages: list[PageResult] = []
        self.expected = 1
        self.progress = _Progress(enabled=not args.no_progress)

    def read(self, client: QwenOCR, items: list[SourceItem], options: dict[str, Any]) -> None:
        args = self.args
        pages = read_documents(
            client, items, pages=args.pages, password=args.password, text_layer=args.text_layer, on_error="mark",
            max_concurrency=args.concurrency, allow_private_urls=args.allow_private_urls, probe_first=True, **options,
        )  # fmt: skip
        try:
            for page in pages:
                self.add(page)
        finally:
            self.progress.close()

    def add(self, page: PageResult) -> None:
        position = page.file_index
        if page.file_failed:  # the input itself cannot be read: say which, go on with the others
            self.pages = []
            self.failures += 1
            self.done.add(position)
            _report(self.labels[position], page.error or QwenOCRError("unreadable"))
            return
        if not self.pages:
            try:
                self.expected = len(parse_pages(self.args.pages, page.total_pages))
            except QwenOCRError:
                self.expected = 1
        self.pages.append(page)
        self.progress.update(page, len(self.pages), self.expected)
        if len(self.pages) < self.expected:
            return
        pages, self.pages = self.pages, []
        self.done.add(position)
        self.failures += sum(not p.ok for p in pages)
        if not _emit(self.labels[position], pages, self.args, self.targets[position], many=len(self.labels) > 1):
            self.failures += 1

    def unfinished(self) -> int:
        """The first input not printed or written yet: the one the next result was of."""
        return min(set(range(len(self.labels) + 1)) - self.done)


def _out_paths(inputs: Sequence[str], out: Path, fmt: str) -> Iterator[Path]:
    """One distinct file in ``out`` per input (see :data:`OUT_NAMING`); names compared without case, so that they
    stay distinct on case-insensitive file systems too."""
    used: set[str] = set()
    ext = _EXT[fmt]
    for source in inputs:
        stem = _stem(source)
        name, n = f"{stem}{ext}", 2
        while name.casefold() in used:
            name, n = f"{stem}-{n}{ext}", n + 1
        used.add(name.casefold())
        yield out / name


def _stem(source: str) -> str:
    """The name an input's output file is made from: its file name without the extension."""
    if source.lower().startswith(("data:", "<data:")):
        return "data"
    stem = Path(source.split("?", 1)[0].split("#", 1)[0]).stem
    stem = "".join("_" if ch in '<>:"/\\|?*' or ord(ch) < 32 else ch for ch in stem).strip(". ")
    return stem[:100] or "output"


def _report(source: str, error: QwenOCRError) -> None:
    message = error.message
    named = message if source in message else f"{source}: {message}"
    print(f"qwen-ocr: error: {named}", file=sys.stderr)


def _not_read(rest: Sequence[str]) -> None:
    if rest:
        print(f"qwen-ocr: stopped: not read: {_few(rest)}", file=sys.stderr)


def _few(names: Sequence[str]) -> str:
    """The first three names, and how many more."""
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(names[:3]) + more


class _Progress:
    """A one-line progress indicator on stderr, for multi-page inputs on a terminal."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.shown = False

    def update(self, page: PageResult, done: int, expected: int) -> None:
        if self.enabled and expected > 1:
            print(f"\r{page.source}: page {done}/{expected}", end="", file=sys.stderr, flush=True)
            self.shown = True

    def close(self) -> None:
        if self.shown:
            print(file=sys.stderr)


def _emit(source: str, pages: list[PageResult], args: argparse.Namespace, target: Path | None, *, many: bool) -> bool:
    """Report the failed pages, then print or write the rest; ``False`` if the output file could not be written."""
    for page in pages:
        if page.error is not None:
            print(f"qwen-ocr: error: {source} page {page.label}: {page.error.message}", file=sys.stderr)
    body = _render(source, pages, args.format, many=many)
    if target is None:
        sys.stdout.write(body)
        return True
    if args.format != "json" and not any(p.ok for p in pages):
        return True  # no page read: nothing to write (each failure was reported above)
    try:
        # "x": a file that appeared since the check is not replaced either
        with target.open("w" if args.overwrite else "x", encoding="utf-8") as fh:
            fh.write(body)
    except FileExistsError:
        print(f"qwen-ocr: error: {target} already exists; {source} was not written (see --overwrite)", file=sys.stderr)
        return False
    except OSError as exc:
        print(f"qwen-ocr: error: cannot write {target} for {source}: {exc.strerror or exc}", file=sys.stderr)
        return False
    print(f"wrote {target}", file=sys.stderr)
    return True


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
    failures = 0
    for source in args.inputs:
        try:
            est = estimate_document(source, model=args.model, pages=args.pages, text_layer=args.text_layer,
                                    password=args.password, region=args.region, batch=args.batch)  # fmt: skip
        except QwenOCRError as exc:  # this input cannot be read: say which, go on with the others
            failures += 1
            _report(source, exc)
            if is_fatal(exc):
                return 1
            continue
        rows.append((source, est))
    if not rows:
        return 1
    width = max(len(s) for s, _ in rows)
    print(f"{'file':<{width}}  pages  to OCR  image tokens  est. USD")
    total_tokens, total_price = 0, 0.0
    for source, est in rows:
        total_tokens += est.image_tokens
        total_price += est.price_usd or 0.0
        print(
            f"{source:<{width}}  {est.pages:>5}  {est.pages_to_ocr:>6}  {est.image_tokens:>12,}  {_usd(est.price_usd)}"
        )
    if len(rows) > 1:
        known = all(est.price_usd is not None for _, est in rows)
        print(f"{'total':<{width}}  {'':>5}  {'':>6}  {total_tokens:>12,}  {_usd(total_price if known else None)}")
    if any(est.price_usd is None for _, est in rows):
        print(f"(no list price of {args.model} in {rows[0][1].region} is recorded: USD shown as n/a)", file=sys.stderr)
    return 1 if failures else 0


def _usd(value: float | None) -> str:
    return f"{value:>8.4f}" if value is not None else f"{'n/a':>8}"


if __name__ == "__main__":
    raise SystemExit(main())
