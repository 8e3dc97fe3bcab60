"""Read millions of pages across a Ray cluster, under one rate limit for the whole account (``pip install
"qwen-ocr[ray]"``).

One machine's CPU caps a reading (rendering and encoding pages: about 12 pages/s on two cores), while the service
allows far more (``qwen3.5-ocr``: 6,000 requests a minute, 100 pages/s). This module spreads the local engine over
a Ray cluster with Ray Data, the standard for batch inference on Ray:

- :func:`read_documents` lists the files on the driver (as :func:`qwen_ocr.read_documents` does), counts their
  pages cheaply, and cuts them into tasks: a long PDF into slices of pages, so that one large file spreads over
  every worker, small files in groups. Worker actors render and send the pages with the local engine (the same
  rendering at the pixel budget, retries, cache and typed errors) and return one row per page;
- :class:`QwenOCRMapper` is a callable class for ``ds.map_batches`` over a dataset that already holds its pages
  (an image column of bytes, paths or URLs);
- the result is a plain ``ray.data.Dataset``: ``write_parquet``, ``write_json``, ``iter_rows``, ``to_pandas``...

**One rate limit for the whole cluster.** The account's limits (RPM and TPM: given, or the model's documented ones
from :func:`qwen_ocr.model_spec`) are not multiplied by the number of workers. One actor, :class:`RateLimiter`,
holds the local :class:`~qwen_ocr.pacing.Pacer` (the same arithmetic as one process uses) and grants every
request its start time, as a delay from its answer (never a clock reading: the machines' clocks need not agree):

- each worker's client has a :class:`SharedPacer` as its pacer (the client's pacing hook,
  :class:`~qwen_ocr.pacing.PacerHook`), so every attempt asks it first, retries included;
- the requests of a worker that are waiting for a start time are granted together, in one call to the actor
  (one round trip for all of them); a start time is asked for only by a request that waits for it, so none is
  held back and used late, and the successes ride along with the next call;
- starts are spaced so that any ``1 s + margin`` holds at most ``RPM // 60`` of them (the service may enforce
  the limit per second) and any minute at most 0.95 x RPM; the margin is 20 ms plus the worst lateness the
  workers report (their threads' late wake-ups, and the way back of the limiter's answers, half a round trip,
  measured as they run) plus 50 ms for each 429 that still got through;
- a 429 seen by any worker is reported at once: the limiter pauses every worker for the ``Retry-After`` and
  lowers the pace, which successes bring back step by step. With no limit known, the first 429s teach one.

The limiter lives as long as the Dataset's driver holds it (a handle in the workers' arguments);
:meth:`QwenOCRMapper.arguments` starts one on the driver likewise, and workers of a :class:`QwenOCRMapper` given
its options directly share one named per account (host, workspace and model), made by the first that needs it.

**The key** travels as a ``SecretStr`` inside the workers' pickled arguments: no repr, log line or Ray task
description shows it. On a cluster, prefer ``DASHSCOPE_API_KEY`` set on every node.

Example::

    import ray
    from qwen_ocr.ray import read_documents

    ray.init()
    pages = read_documents("scans/", task="text_recognition", concurrency=8, cache="/shared/qwen-ocr-cache")
    pages.write_parquet("/shared/out/")      # reads the pages, writes one row per page

    pages = pages.materialize()              # to use the rows more than once without reading them again
    failed = sum(row["error"] is not None for row in pages.iter_rows())
"""

from __future__ import annotations

try:
    import ray as _ray  # noqa: F401 - fails here, with the fix, when the extra is missing
    import ray.data as _ray_data  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without ray (tests/ray)
    from ..errors import MissingDependencyError

    raise MissingDependencyError(
        f'qwen_ocr.ray needs Ray Data: pip install "qwen-ocr[ray]" (could not import {exc.name or "ray"}).'
    ) from None

from ._limiter import RateLimiter, RateLimiterLostError, SharedPacer
from ._reading import rate_limiter, read_documents
from ._rows import COLUMNS, JSON_COLUMNS, page_row, row_schema
from ._workers import QwenOCRMapper, WorkerSpec

__all__ = [
    "COLUMNS",
    "JSON_COLUMNS",
    "QwenOCRMapper",
    "RateLimiter",
    "RateLimiterLostError",
    "SharedPacer",
    "WorkerSpec",
    "page_row",
    "rate_limiter",
    "read_documents",
    "row_schema",
]
