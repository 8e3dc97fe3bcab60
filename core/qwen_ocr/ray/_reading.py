"""The driver's side of a Ray reading: list the files, count and cut their pages into tasks, start the limiter, and
hand Ray Data a dataset whose workers read them.

Example::

    ds = read_documents("scans/", task="text_recognition", concurrency=8, rpm=6000)
    ds.write_parquet("out/")
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ..sources import check_sources, expand_sources
from ._limiter import create_limiter
from ._plan import plan
from ._rows import rows_table
from ._workers import UnitReader, WorkerSpec

if TYPE_CHECKING:
    import ray.data

    from ..documents import PageSpec, TextLayerMode
    from ..sources import Sources

__all__ = ["rate_limiter", "read_documents"]


def read_documents(
    paths: Sources | Iterable[Any],
    *,
    task: Any = None,
    schema: Any = None,
    prompt: str | None = None,
    pages: PageSpec = None,
    text_layer: TextLayerMode | None = None,
    concurrency: int | None = None,
    rpm: float | str | None = None,
    tpm: float | str | None = None,
    recursive: bool = False,
    glob: str | None = None,
    name: str | None = None,
    password: str | None = None,
    pages_per_task: int | None = None,
    num_cpus: float = 1.0,
    limiter: Any = None,
    **client_options: Any,
) -> ray.data.Dataset:
    """Read every selected page of every file across a Ray cluster: a Dataset of one row per page.

    The files are listed and their pages counted here, on the driver; pages are cut into tasks (a long PDF into
    slices, small files in groups) that the workers render and send, every request paced by one limiter for the
    whole cluster (see :mod:`qwen_ocr.ray`). Nothing is read until the Dataset is consumed (``write_parquet``,
    ``iter_rows``, ``take_all``...); rows come in no particular order (sort on ``source`` and ``page``).

    Args:
        paths: what :func:`qwen_ocr.read_documents` takes: paths, glob patterns, folders, URLs, bytes,
            ``(name, bytes)``, file objects, or a list of these. Paths must be readable by every worker (a shared
            filesystem); bytes and file objects are sent through Ray's object store; URLs are downloaded by the
            worker that reads them.
        task: the built-in task (``"table_parsing"``...); ``None``: plain text.
        schema: the fields to extract (implies ``key_information_extraction``).
        prompt: a custom prompt.
        pages: which pages of each file, 1-based (``"1-3,7"``); all by default.
        text_layer: ``"auto"`` / ``"never"`` / ``"only"``, as for the local engine (default: ``"auto"`` for plain
            text, ``"never"`` for a task or prompt).
        concurrency: worker actors (default: the cluster's CPUs divided by ``num_cpus``).
        rpm: the account's requests per minute, shared by all workers (default: the model's documented limit on
            DashScope's own hosts, none elsewhere; a 429 teaches one).
        tpm: its tokens per minute, likewise.
        recursive: look in subfolders of a folder.
        glob: which files of a folder.
        name: the name of ``paths`` when it is bytes.
        password: for encrypted PDFs.
        pages_per_task: pages per task (default: about two tasks per worker, at most four client windows).
        num_cpus: CPUs reserved per worker actor (rendering takes about one).
        limiter: a :func:`rate_limiter` to share with other readings of the same account (default: a new one).
        **client_options: client settings (``model``, ``api_key``, ``base_url``, ``max_concurrency`` (pages in
            flight per worker), ``cache`` (a directory every worker can write), ``max_retries``, ``timeout``...) and
            request options (``resolution``, ``max_tokens``...).

    Returns:
        A ``ray.data.Dataset`` with the columns of :data:`qwen_ocr.ray.COLUMNS`. A page that fails has its message
        in ``error`` (the Dataset does not fail); errors that would fail every page (a wrong key, no access to the
        model) fail it, raised from the first worker that meets one.

    Raises:
        InvalidArgumentError: a wrong option or source (at once, before anything is read).
    """
    import ray
    import ray.data

    check_sources(paths, argument="paths")
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        raise InvalidArgumentError(f"concurrency={concurrency!r} must be a whole number of workers, at least 1.")
    if pages_per_task is not None and (
        isinstance(pages_per_task, bool) or not isinstance(pages_per_task, int) or pages_per_task < 1
    ):
        raise InvalidArgumentError(f"pages_per_task={pages_per_task!r} must be a whole number of pages, at least 1.")
    if not num_cpus > 0:
        raise InvalidArgumentError(f"num_cpus={num_cpus!r} must be a positive number of CPUs.")
    arguments = {"task": task, "schema": schema, "prompt": prompt, "pages": pages, "text_layer": text_layer}
    arguments["password"] = password
    for key, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None:
            arguments[key] = value
    spec = WorkerSpec.build(**arguments, **client_options)
    if not ray.is_initialized():
        ray.init()
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    workers = concurrency or max(1, int(resources.get("CPU", 1) // num_cpus))
    window = int(spec.settings.get("max_concurrency") or 8)
    items = expand_sources(paths, name=name, recursive=recursive, glob=glob, argument="paths")
    units, in_memory = plan(
        items, pages=pages, password=password, pages_per_task=pages_per_task, workers=workers, window=window
    )
    if not units:
        return ray.data.from_arrow(rows_table([]))
    if limiter is None and spec.paced:
        limiter = create_limiter(spec.rpm, spec.tpm)
    refs = [ray.put(data) for data in in_memory]
    tasks = ray.data.from_items(
        [{"unit": pickle.dumps(unit), "pages": unit.weight} for unit in units], override_num_blocks=len(units)
    )
    return tasks.map_batches(
        UnitReader,
        batch_size=1,
        batch_format="pyarrow",
        fn_constructor_kwargs={"spec": spec, "limiter": limiter, "in_memory": refs},
        compute=ray.data.ActorPoolStrategy(size=min(workers, len(units))),
        num_cpus=num_cpus,
    )


def rate_limiter(rpm: float | str | None = None, tpm: float | str | None = None, **client_options: Any) -> Any:
    """Start one rate limiter for an account (a :class:`~qwen_ocr.ray.RateLimiter` actor) and return its handle:
    pass it to several readings (``read_documents(..., limiter=)``) or to ``QwenOCRMapper`` workers
    (``fn_constructor_kwargs={"limiter": ...}``) so that they all share the account's limit.

    Args:
        rpm: the requests per minute (default: the model's documented limit on DashScope's own hosts).
        tpm: the tokens per minute, likewise.
        **client_options: the client settings that decide the default limits (``model``, ``base_url``...).

    Example::

        limiter = rate_limiter(rpm=600, model="qwen-vl-ocr")
        pages = ds.map_batches(QwenOCRMapper, fn_constructor_kwargs={"limiter": limiter, "column": "bytes"},
                               batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=4))
    """
    given = {key: value for key, value in (("rpm", rpm), ("tpm", tpm)) if value is not None}
    spec = WorkerSpec.build(**given, **client_options)
    return create_limiter(spec.rpm, spec.tpm)
