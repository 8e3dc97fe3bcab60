"""``qwen-ocr batch``: Batch API jobs from the command line (:mod:`qwen_ocr.batch`), at half the real-time price.

Examples::

    qwen-ocr batch submit scans/ --recursive --job jobs/june --region cn     # prints the job and its estimated cost
    qwen-ocr batch status jobs/june                                           # per batch, and in total
    qwen-ocr batch wait jobs/june --poll-interval 60                          # progress on stderr
    qwen-ocr batch results jobs/june --format jsonl --out june.jsonl         # input order, failed pages marked
    qwen-ocr batch cancel jobs/june

A job lives in its directory (``--job`` of ``submit``), so every other command takes that directory, from any
process, after a crash too: ``submit`` returns as soon as the batches are created, and ``wait`` (or ``status``)
picks the job up where any process left it. The Beijing region alone serves OCR batches: ``submit`` needs
``--region cn`` (or ``DASHSCOPE_API_REGION=cn``) and a Beijing key in ``DASHSCOPE_API_KEY``, and refuses any other
region before anything is uploaded; the other commands follow the job at the host it was submitted to.

``batch`` is a command word, like ``read`` and ``estimate``: inputs only ever come after ``read``, so a file named
``batch`` is read with ``qwen-ocr read batch`` (or ``qwen-ocr read ./batch``), and nothing else changed for
real-time reading. Exit codes: :data:`BATCH_EXIT_CODES`; result formats: :data:`RESULTS_HELP`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ._cli_support import UsageError, add_reading_options, error, is_terminal, stderr_bar, whole_number
from ._client import QwenOCR
from ._files import replacing_text
from .batch import BatchJob, BatchStatus, JobStatus
from .errors import (
    BatchJobError,
    BatchNotFinishedError,
    BatchUnavailableError,
    BatchWaitTimeoutError,
    QwenOCRError,
)
from .reading import PageResult

__all__ = ["BATCH_EXIT_CODES", "NOT_FINISHED", "RESULTS_FORMATS", "RESULTS_HELP", "add_parser", "run"]

NOT_FINISHED = 3
"""The exit code of ``wait`` when ``--timeout`` passed first, and of ``results`` on a job still running."""

BATCH_EXIT_CODES = """\
exit codes:
  0    done: submitted (submit), shown (status), finished (wait), every page written (results), cancelled (cancel)
  1    an error, one line on stderr (no key, a region without OCR batches, no job in the directory, a batch the
       service refused at validation, ...); for results: some pages failed (each is named on stderr and marked in
       the output, every other page is written)
  2    bad usage: an unknown option or a bad value, a --job directory that holds a job already, or an --out file
       that exists without --overwrite (checked before anything is sent or written)
  3    the job is not finished: wait --timeout passed first, or results was asked too early; the job goes on at
       the service: run wait again
  130  interrupted (Ctrl-C): the job's directory keeps every step taken, and any command picks it up again
  141  standard output was closed before the end (results ... | head)"""
"""The exit codes of ``qwen-ocr batch``, as ``--help`` shows them."""

RESULTS_FORMATS = ("jsonl", "markdown", "md", "text", "txt")
"""``--format`` of ``results`` (``md`` is ``markdown``, ``txt`` is ``text``)."""
_ALIASES = {"md": "markdown", "txt": "text"}

RESULTS_HELP = """\
formats (--format), every selected page in input order (files as given, pages in page order), streamed:
  jsonl     the default: one page record per line, as qwen-ocr read --format jsonl writes them: {"source", "page"
            (0-based), "page_label", "total_pages", "text_source", "result" (the OCRResult as JSON, its
            metadata.batch naming the batch that read it; null when the page failed), "error" (null, or {"type",
            "code", "message"})}
  markdown  (md) each page under "## <source>, page <label>", as qwen-ocr read --format markdown renders it
  text      (txt) each page under "==> <source> (page <label>) <=="
a page that failed is marked where it belongs: its record's "error", or "[not read: ...]" in text and a
"> **Not read** ..." line in markdown; each is also named on stderr. --out PATH writes one file (written whole
or not at all: a temporary file renamed at the end; never replacing one unless --overwrite); --out - or no --out
writes to standard output."""
"""What ``qwen-ocr batch results`` writes, as its ``--help`` shows it."""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``batch`` and its commands to the ``qwen-ocr`` parser's subcommands ``sub``."""
    batch = sub.add_parser(
        "batch",
        help="Batch API jobs: half the real-time price, results within hours (submit, status, wait, results, cancel)",
        description="Batch API jobs (Beijing region only): every selected page becomes one line of a batch, billed "
        "at half the real-time price, answered within the completion window. The job lives in its --job directory: "
        "any process can follow it, after a crash too.",
        epilog=BATCH_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = batch.add_subparsers(dest="batch_command", required=True, metavar="COMMAND")

    submit = commands.add_parser(
        "submit",
        help="submit files, folders, patterns or URLs as a job, and print it with its estimated cost",
        description="Submit every selected page of the inputs as a batch job: the pages are rendered at the budget, "
        "written into input files in --job, uploaded and the batches created; then it returns (the job goes on at "
        "the service). Progress on stderr when it is a terminal: a bar of the pages prepared, then of the lines "
        "uploaded. Prints the job: pages, lines, batches and the estimated cost at the Batch price. Needs "
        "--region cn (or DASHSCOPE_API_REGION=cn) and a Beijing key in DASHSCOPE_API_KEY.",
        epilog=BATCH_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    submit.add_argument("inputs", nargs="+", metavar="INPUT", help="a file, a folder, a pattern or a URL")
    submit.add_argument("--job", required=True, type=Path, metavar="DIR",
                        help="the job's directory (created; it must not hold a job already)")  # fmt: skip
    add_reading_options(submit)
    submit.add_argument("--model", help="qwen-vl-ocr (default), qwen-vl-ocr-latest, or batch-test-model (free test)")
    submit.add_argument("--text-layer", choices=["auto", "never", "only"],
                        help="use a PDF page's own text where it is good (auto: no line, no cost), never, or "
                        "only; default: auto for plain text, never with --task, --schema or --prompt (as "
                        "read)")  # fmt: skip
    submit.add_argument("--resolution", choices=["standard", "high", "max"],
                        help="the pixel budget of a page (default standard)")  # fmt: skip
    submit.add_argument("--recursive", action="store_true", help="also take the subfolders of a folder input")
    submit.add_argument("--allow-private-urls", action="store_true",
                        help="also download URLs on private, loopback or other non-public hosts")  # fmt: skip
    submit.add_argument("--completion-window", default="24h", metavar="WINDOW",
                        help="how long the service may take: 24h (default) to 336h, or 1d to 14d")  # fmt: skip
    submit.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE",
                        help="a tag of the batches: ds_name=... (at most 60 characters) or ds_description=... (200); "
                        "repeat for both")  # fmt: skip
    submit.add_argument("--max-rounds", type=whole_number, default=3, metavar="N",
                        help="rounds in all for a page whose line fails with a retryable error (default "
                        "3)")  # fmt: skip
    _cache_option(submit)
    submit.add_argument("--base-url", help="service root (default: the region's host)")
    submit.add_argument("--region", help="cn (Beijing, the one region with OCR batches) or cn-beijing")
    submit.add_argument("--json", action="store_true", help="print the job as JSON (status and estimate)")
    submit.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    submit.add_argument("-q", "--quiet", action="store_true", help="no progress bars on stderr")

    status = commands.add_parser(
        "status",
        help="where a job stands: each batch, and the total",
        description="Ask the service about the job's running batches and show each batch (round, id, status, "
        "lines, completed, failed) and the total. Nothing is sent again or downloaded: wait does that.",
        epilog=BATCH_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("job_dir", type=Path, metavar="JOB_DIR")
    status.add_argument("--json", action="store_true", help="print the status as JSON")

    wait = commands.add_parser(
        "wait",
        help="follow a job to its end: download what each batch returns, send retryable failures again",
        description="Follow the job to its end: poll its batches every --poll-interval seconds, download and read "
        "what each returns, and send lines that failed with a retryable error again in follow-up batches (up to "
        "the job's --max-rounds). Progress on stderr: a bar on a terminal, else a line whenever it changes.",
        epilog=BATCH_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    wait.add_argument("job_dir", type=Path, metavar="JOB_DIR")
    wait.add_argument("--poll-interval", type=_positive_float, default=30.0, metavar="SECONDS",
                      help="seconds between two looks at the service (default 30)")  # fmt: skip
    wait.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                      help="stop waiting after this long (exit code 3; the job goes on)")  # fmt: skip
    _cache_option(wait)
    wait.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    wait.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary line")

    results = commands.add_parser(
        "results",
        help="write a finished job's pages, in input order, failed pages marked",
        description="Write every selected page of a finished job, in input order, a page at a time.",
        epilog=f"{RESULTS_HELP}\n\n{BATCH_EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    results.add_argument("job_dir", type=Path, metavar="JOB_DIR")
    results.add_argument("--format", choices=RESULTS_FORMATS, default="jsonl", help="see below (default jsonl)")
    results.add_argument("--out", default="-", metavar="PATH", help="the file to write; - (default): standard output")
    results.add_argument("--overwrite", action="store_true", help="replace the --out file if it exists")
    results.add_argument("-q", "--quiet", action="store_true", help="no summary or 'wrote' line")

    cancel = commands.add_parser(
        "cancel",
        help="cancel a job: running batches stop, nothing more is sent; what finished is kept",
        description="Cancel the job: its running batches are cancelled at the service, batches not sent yet are "
        "not sent, no follow-up round starts. Then wait collects what finished, and results marks the rest.",
        epilog=BATCH_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cancel.add_argument("job_dir", type=Path, metavar="JOB_DIR")
    _cache_option(cancel)
    parser: argparse.ArgumentParser = batch
    return parser


def _cache_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache", type=Path, metavar="DIR",
                        help="also store each answer in this cache directory, so that qwen-ocr read --cache DIR "
                        "over the same pages (same options) sends nothing")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run one ``qwen-ocr batch`` command; returns the exit code. Typed errors other than the ones handled here
    are left to :func:`qwen_ocr.cli.main` (one line on stderr, exit code 1)."""
    command = args.batch_command
    try:
        if command == "submit":
            return _submit(args)
        if command == "status":
            return _status(args)
        if command == "wait":
            return _wait(args)
        if command == "results":
            return _results(args)
        return _cancel(args)
    except UsageError as exc:
        error(str(exc))
        return 2
    except (BatchNotFinishedError, BatchWaitTimeoutError) as exc:
        error(exc.message)
        return NOT_FINISHED
    except KeyboardInterrupt:
        where = getattr(args, "job", None) or getattr(args, "job_dir", None)
        print(f"qwen-ocr: interrupted; every step taken is kept in {where}: qwen-ocr batch wait {where} picks the job "
              "up", file=sys.stderr)  # fmt: skip
        return 130


# -- submit -----------------------------------------------------------------------------------------------------------


def _metadata(pairs: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--metadata {pair!r}: write KEY=VALUE, e.g. --metadata ds_name=june-scans.")
        tags[key.strip()] = value
    return tags


def _submit(args: argparse.Namespace) -> int:
    metadata = _metadata(args.metadata)
    if "-" in args.inputs:
        raise UsageError("batch submit takes files, folders, patterns and URLs, not standard input (-): save it to a "
                          "file first.")  # fmt: skip
    options: dict[str, Any] = {
        key: value
        for key, value in (
            ("task", args.task),
            ("schema", args.schema),
            ("prompt", args.prompt),
            ("model", args.model),
            ("pages", args.pages),
            ("password", args.password),
            ("text_layer", args.text_layer),  # None: as read_documents decides it for the task
            ("resolution", args.resolution),
        )
        if value is not None
    }
    if args.allow_private_urls:
        options["allow_private_urls"] = True
    client_kwargs: dict[str, Any] = {"region": args.region, "base_url": args.base_url}
    if args.model:
        client_kwargs["model"] = args.model
    if args.cache is not None:
        client_kwargs["cache"] = args.cache
    show_progress = not (args.no_progress or args.quiet) and is_terminal(sys.stderr)
    with QwenOCR(**client_kwargs) as client:
        try:
            job = client.batch.submit(
                args.inputs, job_dir=args.job, completion_window=args.completion_window, metadata=metadata or None,
                max_rounds=args.max_rounds, recursive=args.recursive, show_progress=show_progress, **options,
            )  # fmt: skip
        except BatchUnavailableError as exc:
            error(_cli_words(exc.message))
            return 1
        except BatchJobError as exc:
            if exc.code != "BatchJobExists":
                raise
            raise UsageError(
                f"{args.job} holds a batch job already; follow it with qwen-ocr batch status/wait {args.job}, or "
                "pass another --job directory."
            ) from None
        except QwenOCRError as exc:
            if not _saved(args.job):
                raise
            error(
                f"{exc.message.rstrip('.')}. The job is saved in {args.job}: once that is fixed, qwen-ocr batch wait "
                f"{args.job} sends what was not sent (nothing is uploaded or created twice)."
            )
            return 1
        status = job.status(refresh=False)
        estimate = job.estimate()
    if args.json:
        print(json.dumps({"status": status.model_dump(mode="json"), "estimate": estimate.model_dump(mode="json")}))
        return 0
    batches = len(status.batches)
    others = status.pages - status.lines
    print(
        f"job {status.job_id} submitted: {_count(status.pages, 'page')} in {_count(status.lines, 'line')}, "
        f"{_count(batches, 'batch', 'batches')} (model {status.model}, region {estimate.region}, "
        f"completion window {args.completion_window})"
    )
    if others:
        print(
            f"  {_count(others, 'page')} without a line: read from their PDF text layer (free), or could not be "
            "prepared (marked in the results)"
        )
    if estimate.usd is not None and estimate.realtime_usd is not None:
        print(
            f"  estimated cost: ~${estimate.usd:.4f} at the Batch price (~${estimate.realtime_usd:.4f} in real time): "
            f"{estimate.input_tokens:,} input tokens, {estimate.output_tokens:,} output tokens assumed"
        )
    else:
        print(f"  estimated cost: n/a (no Batch price of {status.model} is recorded)")
    print(f"  next: qwen-ocr batch wait {args.job}   (or status; then results)")
    return 0


def _saved(job_dir: Path) -> bool:
    """Whether ``job_dir`` holds a job (a submit that failed after saving it can be resumed)."""
    try:
        BatchJob.open(job_dir).close()
    except QwenOCRError:
        return False
    return True


def _cli_words(message: str) -> str:
    """A library message in the command line's words (``region='cn'`` is ``--region cn`` here)."""
    return message.replace(
        "Create the client with region='cn'", "Pass --region cn (or set DASHSCOPE_API_REGION=cn)"
    ).replace("use model='qwen-vl-ocr' or 'qwen-vl-ocr-latest'", "use --model qwen-vl-ocr or qwen-vl-ocr-latest")


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


# -- opening a job ----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _opened(job_dir: Path, *, cache: Path | None = None) -> Iterator[BatchJob]:
    """The job in ``job_dir``, followed by a client of the host it was submitted to (its key from the environment),
    storing answers in ``cache`` when given."""
    with BatchJob.open(job_dir) as probe:  # nothing is sent: the job's host
        base_url = probe.base_url
    with QwenOCR(base_url=base_url, cache=cache) as client:
        yield BatchJob.open(job_dir, client=client)


# -- status -----------------------------------------------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    with _opened(args.job_dir) as job:
        status = job.status()
    if args.json:
        print(status.model_dump_json())
        return 0
    _print_status(status, sys.stdout)
    return 0


def _print_status(status: JobStatus, out: IO[str]) -> None:
    rows = [("round", "part", "batch", "status", "lines", "completed", "failed")]
    for batch in status.batches:
        counts = batch.request_counts
        rows.append(
            (
                str(batch.round),
                str(batch.part),
                batch.batch_id or "-",
                batch.status + ("" if batch.collected or batch.status == "skipped" else _pending(batch)),
                f"{batch.lines:,}",
                f"{counts.completed:,}",
                f"{counts.failed:,}",
            )
        )
    total = status.request_counts
    lines = sum(batch.lines for batch in status.batches)  # a page sent again counts again, as in the counts
    rows.append(("total", "", "", "done" if status.done else "running", f"{lines:,}", f"{total.completed:,}",
                 f"{total.failed:,}"))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(str(status), file=out)
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(), file=out)
    for batch in status.batches:
        for problem in batch.problems:
            where = f"line {problem.get('line')}" if problem.get("line") is not None else "the input file"
            if problem.get("source"):
                where += f" (page {problem.get('page_label')} of {problem.get('source')})"
            print(
                f"batch {batch.batch_id} refused at validation: {where}: {problem.get('code')}: "
                f"{problem.get('message')}",
                file=out,
            )


def _pending(batch: BatchStatus) -> str:
    return " (to collect)" if batch.status in ("completed", "failed", "expired", "cancelled") else ""


# -- wait -------------------------------------------------------------------------------------------------------------


def _wait(args: argparse.Namespace) -> int:
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    with _opened(args.job_dir, cache=args.cache) as job:
        progress = _WaitProgress(enabled=not (args.no_progress or args.quiet))
        try:
            while True:
                try:
                    status = job.wait(poll_interval=args.poll_interval, timeout=0)  # one pass, no sleep
                except BatchWaitTimeoutError:  # not done yet
                    pass
                else:
                    break
                progress.show(job.status(refresh=False))
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise BatchWaitTimeoutError(
                        f"the job {job.job_id} is not finished after {args.timeout:g} s ({job.status(refresh=False)});"
                        f" it goes on at the service: run qwen-ocr batch wait {args.job_dir} again later."
                    )
                time.sleep(args.poll_interval if left is None else min(args.poll_interval, left))
        finally:
            progress.close()
        if args.quiet:
            return 0
        cost = job.cost()
        failed = sum(page.error is not None for page in job.results(on_error="mark"))
    price = f"${cost.usd:.4f} at the Batch price" if cost.usd is not None else "price n/a"
    print(
        f"qwen-ocr: job {status.job_id} finished in {_count(status.rounds, 'round')}: {_count(status.pages, 'page')}, "
        f"{failed:,} failed; {_count(cost.lines_billed, 'line')} billed, {price}; read it with qwen-ocr batch "
        f"results {args.job_dir}",
        file=sys.stderr,
    )
    return 0


class _WaitProgress:
    """Progress on stderr: a tqdm bar of lines done on a terminal, else one line whenever the job's state changes."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.terminal = is_terminal(sys.stderr)
        self.bar: Any = None
        self.last = ""

    def show(self, status: JobStatus) -> None:
        if not self.enabled:
            return
        done = sum(
            b.lines if b.collected else b.request_counts.completed + b.request_counts.failed for b in status.batches
        )
        total = sum(b.lines for b in status.batches)
        if self.terminal:
            if self.bar is None:
                self.bar = stderr_bar(total=total, unit="line", desc="qwen-ocr batch")
                if self.bar is None:
                    self.terminal = False  # no tqdm: lines instead
                    self.show(status)
                    return
            self.bar.total, self.bar.n = total, done
            self.bar.set_postfix_str(", ".join(sorted({b.status for b in status.batches})), refresh=False)
            self.bar.refresh()
            return
        line = f"qwen-ocr: {status} ({done:,}/{total:,} lines)"
        if line != self.last:
            self.last = line
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# -- results ----------------------------------------------------------------------------------------------------------


def _results(args: argparse.Namespace) -> int:
    fmt = _ALIASES.get(args.format, args.format)
    target = None if args.out == "-" else Path(args.out)
    if target is not None and (target.exists() or target.is_symlink()) and not args.overwrite:
        raise UsageError(f"{target} already exists; nothing was written. Pass --overwrite to replace it, or choose "
                          "another --out.")  # fmt: skip
    with _opened(args.job_dir) as job:
        pages = job.results(on_error="mark")  # BatchNotFinishedError here: exit code 3
        custom_prompt = job.options.get("prompt") is not None
        with _output(target) as out:
            written = failed = 0
            for page in pages:
                if page.error is not None:
                    failed += 1
                    where = page.source if page.file_failed else f"{page.source} page {page.label}"
                    error(f"{where}: {page.error.message}")
                out.write(_render_page(page, fmt, custom_prompt=custom_prompt))
                written += 1
    if not args.quiet:
        if target is not None:
            print(f"wrote {target}", file=sys.stderr)
        print(f"qwen-ocr: {_count(written, 'page')}, {failed:,} failed", file=sys.stderr)
    return 1 if failed else 0


@contextlib.contextmanager
def _output(target: Path | None) -> Iterator[IO[str]]:
    """Standard output, or a temporary file beside ``target`` renamed to it once everything is written."""
    if target is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(replacing_text(target, prefix=f".{target.name}.", suffix=".part", sync=False))
        except OSError as exc:
            raise QwenOCRError(f"cannot write {target}: {exc.strerror or exc}", code="OutputError") from None
        yield handle


def _render_page(page: PageResult, fmt: str, *, custom_prompt: bool) -> str:
    from .cli import _markdown, _record

    if fmt == "jsonl":
        return json.dumps(_record(page.source, page), ensure_ascii=False) + "\n"
    error, result = page.error, page.result
    where = page.source if page.file_failed else f"{page.source}, page {page.label}"
    if fmt == "markdown":
        header = f"## {where}\n\n"
        if error is not None or result is None:
            return f"{header}> **Not read** ({_error_name(page)}): {_one_line(page)}\n\n"
        return f"{header}{_markdown(page, result, custom_prompt=custom_prompt).rstrip()}\n\n"
    header = f"==> {page.source} <==\n" if page.file_failed else f"==> {page.source} (page {page.label}) <==\n"
    if error is not None or result is None:
        return f"{header}[not read: {_error_name(page)}: {_one_line(page)}]\n\n"
    return f"{header}{result.text.rstrip()}\n\n"


def _error_name(page: PageResult) -> str:
    error = page.error
    if error is None:
        return "no result"
    return f"{type(error).__name__}, {error.code}" if error.code else type(error).__name__


def _one_line(page: PageResult) -> str:
    message = page.error.message if page.error is not None else "the page has no result"
    return " ".join(message.split())


# -- cancel -----------------------------------------------------------------------------------------------------------


def _cancel(args: argparse.Namespace) -> int:
    with _opened(args.job_dir, cache=args.cache) as job:
        status = job.cancel()
    _print_status(status, sys.stdout)
    if not status.done:
        print(
            f"qwen-ocr: cancelling: the running batches stop at the service; qwen-ocr batch wait {args.job_dir} "
            "collects what they finished, then results marks the other pages as cancelled",
            file=sys.stderr,
        )
    return 0
