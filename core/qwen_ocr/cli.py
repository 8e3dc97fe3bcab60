"""``qwen-ocr``: read images and documents from the command line.

Examples::

    qwen-ocr read receipt.jpg
    qwen-ocr read scans/ --recursive --format jsonl > pages.jsonl
    qwen-ocr read scan.pdf --pages 1-3 --format markdown --out results/
    qwen-ocr read table.png --task table_parsing --format html
    qwen-ocr read invoice.png --schema '{"Seller": "", "Total": ""}' --format json
    curl -s https://example.com/page.png | qwen-ocr read -
    qwen-ocr estimate scans/*.pdf
    qwen-ocr batch submit scans/ --job jobs/june --region cn     # Batch API jobs: see qwen_ocr.cli_batch

Inputs are read through :func:`qwen_ocr.read_documents`: one window of ``--concurrency`` pages in flight across
files (the library's default window unless told), so many small files go as fast as one long PDF (a folder or a
quoted glob pattern stands for its files, ``-`` for standard input). Every input is read even when another one
fails: each failure is one clear line on stderr naming the file, and the exit code says how the run went (see
:data:`EXIT_CODES`). ``--out`` gives every input a file of its own and never replaces an existing file unless
``--overwrite`` is given (see :data:`OUT_NAMING`). What each ``--format`` prints is in :data:`FORMATS_HELP`; the
progress bar and the summary line in :data:`PROGRESS_HELP`. ``qwen-ocr batch ...`` (submit, status, wait, results,
cancel: Batch API jobs at half the price) is :mod:`qwen_ocr.cli_batch`; inputs only ever come after ``read``, so a
file named ``batch`` is ``qwen-ocr read batch``.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ._cli_support import UsageError, add_reading_options, error, is_terminal, stderr_bar, whole_number
from ._client import QwenOCR
from ._version import __version__
from .documents import DocumentReadError, open_document, parse_pages
from .engine import is_fatal, read_documents
from .errors import QwenOCRError
from .options import DEFAULT_MAX_CONCURRENCY
from .reading import PageResult
from .results import OCRResult
from .sources import SourceItem, expand_sources
from .tasks import Task

__all__ = ["EXIT_CODES", "FORMATS_HELP", "OUT_NAMING", "PROGRESS_HELP", "STDIN", "hard_breaks", "main"]

FORMATS = ("text", "markdown", "json", "jsonl", "html")
_EXT = {"text": ".txt", "markdown": ".md", "json": ".json", "jsonl": ".jsonl", "html": ".html"}

STDIN = "-"
"""The input that stands for standard input (a file actually named ``-`` is ``./-``)."""
_STDIN_LABEL = "<stdin>"

EXIT_CODES = """\
exit codes:
  0    every input was read (and written)
  1    an input, a page or an output file failed: each is named on stderr, every other input was still read and
       written; or an error that fails every input alike (missing or wrong key, no access to the model, exhausted
       quota, a bad option) stopped the run
  2    bad usage: an unknown option or a bad value; or --out files that already exist without --overwrite
       (checked before anything is read)
  3    qwen-ocr batch: the job is not finished yet (wait --timeout passed, or results asked too early)
  130  interrupted (Ctrl-C): the files written so far are kept
  141  standard output was closed before the end (qwen-ocr read ... | head): reading stopped there, quietly"""
"""The exit codes of ``qwen-ocr``, as ``--help`` shows them."""

OUT_NAMING = """\
--out names: each input gets its own file, named after it with the format's extension (scan.pdf -> scan.md). When
several inputs have the same name (a/scan.png, b/scan.png), the first keeps it and the next ones get -2, -3, ...
in the order given (scan.md, scan-2.md); standard input is stdin.md. A file that already exists is never replaced
unless --overwrite is given: without it the run stops before reading anything."""
"""How ``--out`` names its files, as ``--help`` shows it."""

FORMATS_HELP = """\
formats (--format):
  text      each page's text (the default); with several pages or inputs, each under a "==> name <==" line
  markdown  each page as Markdown: tables as Markdown tables, document_parsing as headings and paragraphs, fields
            as "key: value" lines; the line breaks of plain-text pages are kept (Markdown hard breaks)
  html      tables as HTML tables, any other page as <pre> text
  json      ONE JSON document: an array of page records, inputs in the order given, pages in page order
            (json.load, jq '.[]'); with --out, one array per input (scan.json)
  jsonl     JSON Lines: one page record per line, printed as soon as its input is complete (for streaming and
            very large runs); with --out, scan.jsonl
a page record: {"source", "page" (0-based), "page_label", "total_pages", "text_source" ("ocr" or "text_layer"),
"result" (the OCRResult as JSON; null when the page failed), "error" (null, or {"type", "code", "message"})}. An
input that cannot be read at all has no record: it is named on stderr and counted in the exit code."""
"""What each ``--format`` prints, as ``qwen-ocr read --help`` shows it."""

PROGRESS_HELP = """\
progress and summary: when stderr is a terminal, a progress bar (tqdm) counts the selected pages of all inputs
(--pages 1-3 of a 6-page PDF counts 3), with the rate and the time left; nothing when stderr is a pipe or a file,
or with --no-progress. At the end, one summary line on stderr: inputs, pages, failures, tokens and their price at
the model's list price (qwen_ocr.cost; pages from a PDF's text layer or the --cache cost nothing). --quiet leaves
out the bar, the summary and the "wrote" lines; errors are always shown."""
"""The progress bar and the summary line, as ``qwen-ocr read --help`` shows them."""


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
        help="OCR images, PDFs and multi-page TIFFs (paths, folders, patterns, URLs or - for standard input)",
        description="OCR images, PDFs and multi-page TIFFs: paths, folders (their PDF and image files; --recursive "
        "for subfolders too), glob patterns, http(s), data: or oss:// URLs, and - for a file on standard input. "
        "The pages of all inputs are read a window at a time. An input that cannot be read is reported on stderr "
        "and the others are still read.",
        epilog=f"{FORMATS_HELP}\n\n{PROGRESS_HELP}\n\n{OUT_NAMING}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    read.add_argument("inputs", nargs="+", metavar="INPUT", help="a file, a folder, a pattern, a URL, or - (stdin)")
    add_reading_options(read)
    read.add_argument("--text-layer", choices=["auto", "never", "only"],
                      help="use a PDF page's own text where it is good (auto), never, or only; default: auto for "
                      "plain text, never with --task, --schema or --prompt")  # fmt: skip
    read.add_argument("--recursive", action="store_true", help="also read the subfolders of a folder input")
    read.add_argument("--allow-private-urls", action="store_true",
                      help="also download URLs on private, loopback or other non-public hosts")  # fmt: skip
    read.add_argument("--format", choices=FORMATS, default="text", help="what to print (see below; default text)")
    read.add_argument("--out", type=Path, help="write one file per input into this directory (names: see below)")
    read.add_argument("--overwrite", action="store_true", help="replace files that already exist in --out")
    read.add_argument("--cache", type=Path, metavar="DIR",
                      help="keep readings in this directory: a page already read (same image, model and options) "
                      "is not sent or paid for again")  # fmt: skip
    read.add_argument("--provider", choices=["auto", "dashscope", "openai", "local"], default="auto")
    read.add_argument("--model", help="model id (default qwen-vl-ocr)")
    read.add_argument("--base-url", help="service root, e.g. http://127.0.0.1:8000")
    read.add_argument("--region", help="intl (default), cn, us or a region id such as eu-central-1")
    read.add_argument("--concurrency", type=whole_number, metavar="N",
                      help=f"pages in flight at once, across inputs (default {DEFAULT_MAX_CONCURRENCY}, the "
                      "library's)")  # fmt: skip
    read.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    read.add_argument("-q", "--quiet", action="store_true", help="no progress bar, summary or 'wrote' lines")

    estimate = sub.add_parser(
        "estimate",
        help="pages, image tokens and price, before sending anything",
        description="Pages, image tokens and price of each input, from its page sizes alone: nothing is rendered "
        "or sent. Inputs are local files, folders (--recursive), glob patterns or - (standard input). An input "
        "that cannot be read is reported on stderr and the others are still estimated.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    estimate.add_argument("inputs", nargs="+", metavar="INPUT")
    estimate.add_argument("--model", default="qwen-vl-ocr")
    estimate.add_argument("--pages", help="pages of a document, 1-based: 1-3,7")
    estimate.add_argument("--password", help="password of an encrypted PDF")
    estimate.add_argument("--text-layer", choices=["auto", "never", "only"], default="auto")
    estimate.add_argument("--recursive", action="store_true", help="also estimate the subfolders of a folder input")
    estimate.add_argument("--region", help="the region whose prices apply: intl (default), cn, us or a region id")
    estimate.add_argument("--batch", action="store_true", help="price the Batch API (half the real-time price)")

    from .cli_batch import add_parser as add_batch_parser

    add_batch_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "estimate":
            return _estimate(args)
        if args.command == "batch":
            from .cli_batch import run as run_batch

            return run_batch(args)
        return _read(args)
    except QwenOCRError as exc:
        error(exc.message)
        return 1
    except KeyboardInterrupt:
        print("qwen-ocr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _detach_stdout()
        return 141


def _detach_stdout() -> None:
    """After the reader of standard output went away: point it at the null device, so that the interpreter's last
    flush does not fail again on the closed pipe."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# -- inputs -----------------------------------------------------------------------------------------------------------


def _items(args: argparse.Namespace) -> list[SourceItem]:
    """The inputs expanded into files (``-`` as one item of standard input, not read yet)."""
    if args.inputs.count(STDIN) > 1:
        raise UsageError("- (standard input) can be given once.")
    entries: list[Any] = [SourceItem(label=_STDIN_LABEL, data=b"") if i == STDIN else i for i in args.inputs]
    items = []
    for item in expand_sources(entries, recursive=args.recursive, argument="inputs"):
        error = item.error
        if isinstance(error, DocumentReadError) and "pass recursive=True" in error.message:  # the option's CLI name
            message = error.message.replace("pass recursive=True", "pass --recursive")
            item = replace(item, error=DocumentReadError(message, code=error.code))
        items.append(item)
    return items


def _with_stdin(items: list[SourceItem]) -> list[SourceItem]:
    """The items with standard input read into its item (once every usage check has passed)."""
    if not any(item.label == _STDIN_LABEL and item.path is None for item in items):
        return items
    stream = sys.stdin
    if stream is None or is_terminal(stream):
        where = "closed" if stream is None else "a terminal"
        raise UsageError(
            f"- reads an image or a PDF from standard input, which is {where} here: pipe a file in "
            "(qwen-ocr read - < scan.png, or curl -s URL | qwen-ocr read -)."
        )
    data = stream.buffer.read() if hasattr(stream, "buffer") else stream.read().encode()
    return [
        SourceItem(label=_STDIN_LABEL, data=data) if i.label == _STDIN_LABEL and i.path is None else i for i in items
    ]


# -- qwen-ocr read ----------------------------------------------------------------------------------------------------


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
    try:
        items = _items(args)
    except UsageError as exc:
        error(str(exc))
        return 2
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
        items = _with_stdin(items)
    except UsageError as exc:
        error(str(exc))
        return 2
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            error(f"cannot make the --out directory {args.out}: {exc.strerror or exc}")
            return 1
    client_kwargs: dict[str, Any] = {"provider": args.provider, "region": args.region, "base_url": args.base_url}
    if args.model:
        client_kwargs["model"] = args.model
    if args.concurrency is not None:
        # The client's request slots are the window's: a window wider than the client's default is not capped by it.
        client_kwargs["max_concurrency"] = args.concurrency
    if args.cache is not None:
        client_kwargs["cache"] = args.cache
    with QwenOCR(**client_kwargs) as client:
        run = _Run(args, items, targets)
        try:
            run.read(client, options)
        except QwenOCRError as exc:
            run.finish()
            if not is_fatal(exc):
                raise
            # An error that fails every input alike: name the input it struck and stop, rather than repeat it.
            failing = run.unfinished()
            _report(labels[failing] if failing < len(labels) else "", exc)
            _not_read(labels[failing + 1 :])
            return 1
        finally:
            run.finish()
        if not args.quiet:
            run.summarize(client)
    return 1 if run.failures else 0


class _Run:
    """One ``qwen-ocr read``: the pages of each input collected, and the input printed or written once complete."""

    def __init__(self, args: argparse.Namespace, items: list[SourceItem], targets: list[Path | None]) -> None:
        self.args = args
        self.items = items
        self.labels = [item.label for item in items]
        self.targets = targets
        self.failures = 0
        self.done: set[int] = set()
        self.pages: list[PageResult] = []
        self.expected = 1
        self.tally = _Tally()
        self.progress = _Progress(enabled=not (args.no_progress or args.quiet))
        self.stdout = _Stdout(args.format, self.progress)

    def read(self, client: QwenOCR, options: dict[str, Any]) -> None:
        args = self.args
        self.progress.start(self.items, args.pages, args.password)
        pages = read_documents(
            client, self.items, pages=args.pages, password=args.password, text_layer=args.text_layer,
            on_error="mark", allow_private_urls=args.allow_private_urls, probe_first=True, **options,
        )  # fmt: skip
        try:
            for page in pages:
                self.add(page)
        finally:
            pages.close()

    def finish(self) -> None:
        """Close the progress bar and the JSON document on standard output (valid JSON even after a stop)."""
        self.progress.close()
        if self.args.out is None:
            self.stdout.close()

    def add(self, page: PageResult) -> None:
        position = page.file_index
        if page.file_failed:  # the input itself cannot be read: say which, go on with the others
            self.pages = []
            self.failures += 1
            self.tally.files += 1
            self.tally.failed += 1
            self.done.add(position)
            self.progress.page(page, selected=0)
            _report(self.labels[position], page.error or QwenOCRError("unreadable"), self.progress)
            return
        if not self.pages:
            try:
                self.expected = len(parse_pages(self.args.pages, page.total_pages))
            except QwenOCRError:
                self.expected = 1
        self.pages.append(page)
        self.progress.page(page, selected=self.expected if len(self.pages) == 1 else None)
        if len(self.pages) < self.expected:
            return
        pages, self.pages = self.pages, []
        self.done.add(position)
        self.tally.add(pages)
        failed = sum(not p.ok for p in pages)
        self.failures += failed
        if not self._emit(self.labels[position], pages, self.targets[position]):
            self.failures += 1
            self.tally.failed += 1

    def unfinished(self) -> int:
        """The first input not printed or written yet: the one the next result was of."""
        return min(set(range(len(self.labels) + 1)) - self.done)

    def _emit(self, source: str, pages: list[PageResult], target: Path | None) -> bool:
        """Report the failed pages, then print or write the rest; ``False`` if the output file could not be
        written."""
        args = self.args
        for page in pages:
            if page.error is not None:
                self.progress.note(f"qwen-ocr: error: {source} page {page.label}: {page.error.message}")
        if target is None:
            self.stdout.write(_render(source, pages, args, many=len(self.labels) > 1, alone=False))
            return True
        if args.format not in ("json", "jsonl") and not any(p.ok for p in pages):
            return True  # no page read: nothing to write (each failure was reported above)
        body = _render(source, pages, args, many=len(self.labels) > 1, alone=True)
        try:
            # "x": a file that appeared since the check is not replaced either
            with target.open("w" if args.overwrite else "x", encoding="utf-8") as fh:
                fh.write(body)
        except FileExistsError:
            self.progress.note(f"qwen-ocr: error: {target} already exists; {source} was not written (see --overwrite)")
            return False
        except OSError as exc:
            self.progress.note(f"qwen-ocr: error: cannot write {target} for {source}: {exc.strerror or exc}")
            return False
        if not args.quiet:
            self.progress.note(f"wrote {target}")
        return True

    def summarize(self, client: QwenOCR) -> None:
        print(f"qwen-ocr: {self.tally.line(client)}", file=sys.stderr)


class _Tally:
    """What a run read and what it cost, for the summary line."""

    def __init__(self) -> None:
        self.files = 0
        self.pages = 0
        self.failed = 0
        self.text_layer = 0
        self.cached = 0
        self.local = 0
        self.tokens: dict[str, list[int]] = {}  # model -> [input, output] of the pages sent

    def add(self, pages: list[PageResult]) -> None:
        self.files += 1
        for page in pages:
            result = page.result
            if result is None or page.error is not None:
                self.failed += 1
                continue
            self.pages += 1
            if page.text_source == "text_layer":
                self.text_layer += 1
            elif result.metadata.get("cache") == "hit":
                self.cached += 1
            elif result.provider == "local":
                self.local += 1
            else:
                used = self.tokens.setdefault(result.model, [0, 0])
                used[0] += result.usage.input_tokens
                used[1] += result.usage.output_tokens

    def line(self, client: QwenOCR) -> str:
        """``3 files, 7 pages (4 from the text layer), 1 failed, 12,345 tokens, ~$0.0012``."""
        from .cost import price_usd

        free = [
            f"{n} from {where}"
            for n, where in (
                (self.text_layer, "the text layer"),
                (self.cached, "the cache"),
                (self.local, "the local engine"),
            )
            if n
        ]
        pages = f"{self.pages} page{'s' if self.pages != 1 else ''}" + (f" ({', '.join(free)})" if free else "")
        tokens = sum(i + o for i, o in self.tokens.values())
        price: float | None = 0.0
        for model, (inputs, outputs) in self.tokens.items():
            try:
                cost = price_usd(inputs, outputs, model=model or client.model, region=client.region)
            except QwenOCRError:  # no list price of this model there
                price = None
                break
            price = (price or 0.0) + cost
        shown = "price n/a (no list price recorded)" if price is None else f"~${price:.4f}" if self.tokens else "$0"
        files = f"{self.files} file{'s' if self.files != 1 else ''}"
        return f"{files}, {pages}, {self.failed} failed, {tokens:,} tokens, {shown}"


# -- output -----------------------------------------------------------------------------------------------------------


class _Stdout:
    """Standard output: each input's text as it completes; ``json`` as one array opened before the first record and
    closed at the end (also after an error), so that the whole output is always one JSON document."""

    def __init__(self, fmt: str, progress: _Progress) -> None:
        self.fmt = fmt
        self.progress = progress
        self.records = 0
        self.closed = False

    def write(self, body: str) -> None:
        if self.fmt == "json":
            if not body:
                return
            body = ("[\n" if self.records == 0 else ",\n") + body
            self.records += 1
        self.progress.out(body)

    def close(self) -> None:
        if self.fmt == "json" and not self.closed:
            self.closed = True
            self.progress.out("\n]\n" if self.records else "[]\n")


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
    if source == _STDIN_LABEL:
        return "stdin"
    if source.lower().startswith(("data:", "<data:")):
        return "data"
    stem = Path(source.split("?", 1)[0].split("#", 1)[0]).stem
    stem = "".join("_" if ch in '<>:"/\\|?*' or ord(ch) < 32 else ch for ch in stem).strip(". ")
    return stem[:100] or "output"


def _report(source: str, error: QwenOCRError, progress: _Progress | None = None) -> None:
    message = error.message
    named = message if source in message else f"{source}: {message}"
    line = f"qwen-ocr: error: {named}"
    if progress is not None:
        progress.note(line)
    else:
        print(line, file=sys.stderr)


def _not_read(rest: Sequence[str]) -> None:
    if rest:
        print(f"qwen-ocr: stopped: not read: {_few(rest)}", file=sys.stderr)


def _few(names: Sequence[str]) -> str:
    """The first three names, and how many more."""
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(names[:3]) + more


def _record(source: str, page: PageResult) -> dict[str, Any]:
    """A page record of ``--format json``/``jsonl`` (see :data:`FORMATS_HELP`)."""
    result = page.result
    error = page.error
    return {
        "source": source,
        "page": page.index,
        "page_label": page.label,
        "total_pages": page.total_pages,
        "text_source": page.text_source,
        "result": result.model_dump(mode="json") if result is not None else None,
        "error": None
        if error is None
        else {"type": type(error).__name__, "code": error.code, "message": error.message},
    }


def _render(source: str, pages: list[PageResult], args: argparse.Namespace, *, many: bool, alone: bool) -> str:
    """One input's pages in ``args.format``; ``alone``: as a file of its own (a whole JSON document for ``json``),
    else as a piece of standard output (``json``: the records without the array's brackets)."""
    fmt = args.format
    if fmt in ("json", "jsonl"):
        lines = [json.dumps(_record(source, page), ensure_ascii=False) for page in pages]
        if fmt == "jsonl":
            return "".join(f"{line}\n" for line in lines)
        return ("[\n" + ",\n".join(lines) + "\n]\n") if alone else ",\n".join(lines)
    out: list[str] = []
    multi = len(pages) > 1
    for page in pages:
        result = page.result
        if result is None:
            continue
        header = ""
        if many or multi:
            header = f"==> {source} (page {page.label}) <==\n" if multi else f"==> {source} <==\n"
        if fmt == "markdown":
            text = _markdown(page, result, custom_prompt=bool(args.prompt))
            header = f"## {source}, page {page.label}\n\n" if (many or multi) else ""
        elif fmt == "html":
            text = _html(result)
            header = f"<h2>{html.escape(source)}, page {html.escape(page.label)}</h2>\n" if (many or multi) else ""
        else:
            text = result.text
        out.append(f"{header}{text.rstrip()}\n" + ("\n" if multi or many else ""))
    return "".join(out)


_PLAIN_TASKS = (None, Task.TEXT_RECOGNITION, Task.MULTI_LAN, Task.ADVANCED_RECOGNITION)
_LINE_END = re.compile(r"(?<=\S)[ \t]*\n(?=[ \t]*\S)")


def _markdown(page: PageResult, result: OCRResult, *, custom_prompt: bool) -> str:
    """The page as Markdown (:meth:`OCRResult.to_markdown`); a page read as plain text (or as fields) keeps its
    line breaks: Markdown joins the lines of a paragraph into one, so each line ends in a hard break (two
    spaces), and blank lines still separate paragraphs. Output of a custom prompt, which may be Markdown
    already, is left as it is."""
    text = result.to_markdown()
    plain = page.text_source == "text_layer" or (
        not result.tables
        and (
            (result.task in _PLAIN_TASKS and not custom_prompt)
            or (result.task is Task.KEY_INFORMATION_EXTRACTION and result.fields is not None)
        )
    )
    return hard_breaks(text) if plain else text


def hard_breaks(text: str) -> str:
    """Plain text as Markdown that keeps its line breaks: every line followed by another non-blank line ends in a
    hard break (two spaces); blank lines are left alone (they separate paragraphs).

    >>> hard_breaks("Dear Sir,\\nthank you.\\n\\nYours")
    'Dear Sir,  \\nthank you.\\n\\nYours'
    """
    return _LINE_END.sub("  \n", text)


def _html(result: OCRResult) -> str:
    if result.tables:
        return "\n".join(table.to_html() for table in result.tables)
    return f"<pre>{html.escape(result.text)}</pre>"


# -- progress ---------------------------------------------------------------------------------------------------------


class _Progress:
    """A tqdm bar on stderr, on a terminal only, counting the pages selected across all inputs.

    The total starts at one page per input and is corrected as it becomes known: a thread opens the local files
    (and standard input) one after another to count their selected pages (nothing is rendered), and an input's first
    result says its own count for sure. Everything else written to the terminal while the bar shows goes through
    :meth:`note` and :meth:`out`, so that it is not mixed into the bar's line.
    """

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled and is_terminal(sys.stderr)
        self.bar: Any = None
        self._tqdm: Any = None
        self._guess: list[int] = []
        self._known: list[bool] = []
        self._counted: deque[tuple[int, int]] = deque()
        self._stop = threading.Event()
        self._counter: threading.Thread | None = None

    def start(self, items: list[SourceItem], pages: Any, password: str | None) -> None:
        if not self.enabled or not items:
            return
        self._guess = [0 if item.error is not None else 1 for item in items]
        self._known = [item.error is not None for item in items]
        self.bar = stderr_bar(total=sum(self._guess), unit="page", desc="qwen-ocr")
        if self.bar is None:
            return
        self._tqdm = type(self.bar)
        self._counter = threading.Thread(
            target=self._count, args=(items, pages, password), name="qwen-ocr-count", daemon=True
        )
        self._counter.start()

    def _count(self, items: list[SourceItem], pages: Any, password: str | None) -> None:
        for index, item in enumerate(items):
            if self._stop.is_set():
                return
            if item.error is not None or (item.path is None and item.data is None):
                continue  # a URL still to download, an oss:// image: one page until its result says
            try:
                with open_document(item.document_source(), password=password, pages=pages) as doc:
                    self._counted.append((index, len(doc)))
            except (QwenOCRError, OSError, ValueError):
                self._counted.append((index, 0))  # it will fail when read: no page to wait for

    def page(self, page: PageResult, *, selected: int | None) -> None:
        """A result arrived; ``selected``: the pages its input has, on its input's first result."""
        bar = self.bar
        if bar is None:
            return
        while self._counted:
            index, count = self._counted.popleft()
            self._settle(index, count, known=False)
        if selected is not None:
            self._settle(page.file_index, selected, known=True)
        bar.set_postfix_str(page.source, refresh=False)
        if not page.file_failed:
            bar.update(1)
        else:
            bar.refresh()

    def _settle(self, index: int, count: int, *, known: bool) -> None:
        if index >= len(self._guess) or self._known[index]:
            return
        self.bar.total += count - self._guess[index]
        self._guess[index] = count
        self._known[index] = known

    def note(self, line: str) -> None:
        """A line on stderr, above the bar."""
        if self.bar is not None:
            self._tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def out(self, text: str) -> None:
        """Text on standard output (the bar cleared first when both are on the terminal)."""
        if self.bar is None:
            sys.stdout.write(text)
            return
        with self._tqdm.external_write_mode(file=sys.stdout):
            sys.stdout.write(text)
            sys.stdout.flush()

    def close(self) -> None:
        self._stop.set()
        if self._counter is not None:
            self._counter.join(timeout=2)
            self._counter = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# -- qwen-ocr estimate ------------------------------------------------------------------------------------------------


def _estimate(args: argparse.Namespace) -> int:
    from .cost import estimate_document

    try:
        items = _with_stdin(_items(args))
    except UsageError as exc:
        error(str(exc))
        return 2
    rows = []
    failures = 0
    for item in items:
        source = item.label
        try:
            if item.error is not None:
                raise item.error
            if item.path is None and item.data is None:
                raise QwenOCRError(
                    "estimate reads local files only (a URL would have to be downloaded); download it and pass the "
                    "file.",
                    code="UnsupportedInput",
                )
            est = estimate_document(item.document_source(), model=args.model, pages=args.pages,
                                    text_layer=args.text_layer, password=args.password, region=args.region,
                                    batch=args.batch)  # fmt: skip
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
