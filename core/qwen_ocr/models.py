"""What we know of each Qwen-OCR model: patch size, pixel budget, output and rate limits, regions, prices (pure).

The numbers come from the vendor's Qwen-OCR guide (English edition of 2026-02-04 and its Chinese edition, as
restated in the protocol notes), checked again for ``qwen3.5-ocr`` (released 2026-06-16). The stable alias
``qwen-vl-ocr`` has moved between snapshots; it now equals the 2025-11-20 snapshot (32 px patches, Qwen3-VL
based), with its own 600 RPM.

**Where each model is offered** (:attr:`ModelSpec.regions`): Singapore and Virginia serve ``qwen-vl-ocr`` and
``qwen-vl-ocr-2025-11-20`` only; ``qwen-vl-ocr-latest``, the 28-px snapshots and ``qwen3.5-ocr`` are Beijing only.
The docs call ``qwen-vl-ocr-2025-04-13`` and ``-2024-10-28`` not recommended and point to ``qwen3.5-ocr``.

**Prices** (:class:`Price`, USD per million tokens, per model *and* region, each with its date and source page):
``qwen-vl-ocr`` costs $0.07 in / $0.16 out in Singapore, $0.043 / $0.072 in Virginia and Beijing (as do the other
2025-11-20-based models); the 28-px Beijing snapshots $0.717 / $0.717; Batch half of real time
(:data:`BATCH_DISCOUNT`). No list price of ``qwen3.5-ocr`` is recorded here yet: :func:`model_price` gives ``None``
for it; register one with :func:`register_model` if you know it.

Register a model of your own (a self-hosted Qwen-VL, say) with :func:`register_model`.

Example::

    from qwen_ocr.models import model_price, model_spec
    spec = model_spec("qwen-vl-ocr-latest")
    spec.patch, spec.max_pixels        # (32, 8388608)
    model_price("qwen-vl-ocr", "intl").input_per_mtok     # 0.07
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from .config import DEFAULT_REGION, canonical_region, describe_region
from .errors import UnsupportedTaskError
from .tasks import Task

__all__ = [
    "BATCH_DISCOUNT",
    "DEFAULT_MODEL",
    "GUIDE_URL",
    "ModelSpec",
    "Price",
    "check_call",
    "model_price",
    "model_spec",
    "register_model",
    "suggest_model",
]

logger = logging.getLogger("qwen_ocr")

DEFAULT_MODEL = "qwen-vl-ocr"

GUIDE_URL = "https://www.alibabacloud.com/help/en/model-studio/qwen-vl-ocr"
"""The vendor's Qwen-OCR guide ("Text extraction (Qwen-OCR)"), source of the model table and the prices."""
_GUIDE_DATE = "2026-02-04"
"""The guide's "Last Updated" of the edition the prices were read from."""
_QWEN35_DATE = "2026-06-16"
"""The guide's update that added qwen3.5-ocr (its release date)."""

BATCH_DISCOUNT = 0.5
"""Batch inference costs half the real-time price (the guide's "Batch 50%"; the Batch API page, read for the
protocol notes, documents it for the Beijing region)."""

BEIJING, SINGAPORE, VIRGINIA = "cn-beijing", "ap-southeast-1", "us-east-1"


@dataclass(frozen=True)
class Price:
    """A list price, in US dollars per million tokens, with when and where it was read.

    Attributes:
        input_per_mtok: per million input tokens (image and text).
        output_per_mtok: per million output tokens.
        as_of: the date of the page the figure was read from (ISO ``YYYY-MM-DD``).
        source: the page (and its part) it was read from.
    """

    input_per_mtok: float
    output_per_mtok: float
    as_of: str = ""
    source: str = ""

    def usd(self, input_tokens: int, output_tokens: int, *, batch: bool = False) -> float:
        """US dollars for this many tokens; ``batch=True`` at the Batch discount.

        >>> Price(0.07, 0.16).usd(1_000_000, 1_000_000)
        0.23
        """
        usd = (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000
        return round(usd * (BATCH_DISCOUNT if batch else 1.0), 12)


# Each figure: the guide of 2026-02-04, the region's tab of its "Supported models" table.
_SG_1120 = Price(0.07, 0.16, _GUIDE_DATE, f"{GUIDE_URL} (Supported models, Singapore: qwen-vl-ocr)")
_SG_1120_SNAPSHOT = Price(
    0.07,
    0.16,
    _GUIDE_DATE,
    f"{GUIDE_URL} (Supported models, Singapore; the price of qwen-vl-ocr, which the guide says matches it)",
)
_US_1120 = Price(0.043, 0.072, _GUIDE_DATE, f"{GUIDE_URL} (Supported models, Virginia; 2025-11-20 based)")
_BJ_1120 = Price(0.043, 0.072, _GUIDE_DATE, f"{GUIDE_URL} (Supported models, Beijing; 2025-11-20 based)")
_BJ_28PX = Price(0.717, 0.717, _GUIDE_DATE, f"{GUIDE_URL} (Supported models, Beijing; 28-px snapshots)")


@dataclass(frozen=True)
class ModelSpec:
    """Limits, regions and prices of one model.

    Attributes:
        name: the model id sent on the wire.
        patch: pixels per side of one image token (28 or 32).
        min_pixels: default lower pixel budget of an image.
        max_pixels: default upper pixel budget of an image.
        max_pixels_ceiling: the largest ``max_pixels`` the service accepts.
        max_tokens: the most output tokens of one reply (what the cost estimate caps a page's output at).
        rpm: requests per minute allowed per account.
        tpm: tokens per minute allowed per account (input + output).
        supports_tasks: whether built-in ``ocr_options.task`` works.
        supports_advanced_recognition: whether the ``advanced_recognition`` task works.
        input_price_per_mtok: a price of your own per million input tokens, in USD, in every region (a
            registered or self-hosted model); ``None``: the vendor's list prices in ``prices``.
        output_price_per_mtok: likewise for output tokens.
        prices: the vendor's list prices by region id (``(("ap-southeast-1", Price(...)), ...)``).
        regions: the region ids where the service offers the model; ``None`` when not known (a model of your
            own), which turns the region checks off.
        task_prompt_combines: a built-in task combines with a custom prompt (``qwen3.5-ocr``) instead of
            overriding it.
        text_box_frame: the frame of the boxes the model writes in its *text* (the OpenAI-compatible mode's
            ``advanced_recognition``, self-hosted servers): ``"normalized"`` (0..1000 on both axes: the
            Qwen3-VL-based 32-px models) or ``"pixels"`` (pixels of the image as the model saw it, after its
            ``smart_resize``: the 28-px snapshots and Qwen2.5-VL). ``None``: by the patch (32 normalized, 28 pixels).
        max_url_bytes: the largest image the service fetches from a URL.
        max_inline_bytes: the largest image sent inline (the ``data:`` URL's decoded bytes).
    """

    name: str
    patch: int = 32
    min_pixels: int = 3072
    max_pixels: int = 8_388_608
    max_pixels_ceiling: int = 30_720_000
    max_tokens: int = 4096
    rpm: int = 600
    tpm: int = 6_000_000
    supports_tasks: bool = True
    supports_advanced_recognition: bool = True
    input_price_per_mtok: float | None = None
    output_price_per_mtok: float | None = None
    prices: tuple[tuple[str, Price], ...] = ()
    regions: frozenset[str] | None = None
    task_prompt_combines: bool = False
    text_box_frame: Literal["normalized", "pixels"] | None = None
    max_url_bytes: int = 10_000_000
    max_inline_bytes: int = 10_000_000

    @property
    def max_image_tokens(self) -> int:
        """The most tokens one image may cost (the service caps a single image at 30,000)."""
        return min(30_000, self.max_pixels_ceiling // (self.patch * self.patch))

    @property
    def box_frame(self) -> Literal["normalized", "pixels"]:
        """The frame of boxes written in the reply's text (see ``text_box_frame``)."""
        if self.text_box_frame is not None:
            return self.text_box_frame
        return "pixels" if self.patch == 28 else "normalized"

    def price(self, region: str | None = None) -> Price | None:
        """The price in a region (default Singapore): your own flat price when set, else the list price there;
        ``None`` when neither is known (the model is not sold there, or its price is not recorded)."""
        if self.input_price_per_mtok is not None or self.output_price_per_mtok is not None:
            return Price(
                float(self.input_price_per_mtok or 0.0),
                float(self.output_price_per_mtok or 0.0),
                source="ModelSpec.input_price_per_mtok / output_price_per_mtok",
            )
        wanted = canonical_region(region) if region else DEFAULT_REGION
        for where, price in self.prices:
            if where == wanted:
                return price
        return None

    def offered_in(self, region: str | None) -> bool | None:
        """Whether the service offers the model in a region; ``None`` when that is not known."""
        if self.regions is None or region is None:
            return None
        return canonical_region(region) in self.regions


def _p28(name: str, *, supports_tasks: bool = True, supports_advanced_recognition: bool = True) -> ModelSpec:
    """A Beijing snapshot with 28-px patches (2024-10-28 to 2025-08-28), at $0.717 / $0.717."""
    return ModelSpec(
        name,
        patch=28,
        min_pixels=3136,
        max_pixels=6_422_528,
        max_pixels_ceiling=23_520_000,
        supports_tasks=supports_tasks,
        supports_advanced_recognition=supports_advanced_recognition,
        prices=((BEIJING, _BJ_28PX),),
        regions=frozenset({BEIJING}),
    )


_ALL3 = frozenset({SINGAPORE, VIRGINIA, BEIJING})

_MODELS: dict[str, ModelSpec] = {
    "qwen-vl-ocr": ModelSpec(
        "qwen-vl-ocr",
        max_tokens=8192,  # the guide of 2026-02-04: "Max output 8,192" (it matches 2025-11-20)
        prices=((SINGAPORE, _SG_1120), (VIRGINIA, _US_1120), (BEIJING, _BJ_1120)),
        regions=_ALL3,
    ),
    "qwen-vl-ocr-latest": ModelSpec(
        "qwen-vl-ocr-latest",
        max_tokens=8192,
        rpm=1200,
        prices=((BEIJING, _BJ_1120),),
        regions=frozenset({BEIJING}),
    ),
    "qwen-vl-ocr-2025-11-20": ModelSpec(
        "qwen-vl-ocr-2025-11-20",
        max_tokens=8192,
        rpm=1200,
        prices=((SINGAPORE, _SG_1120_SNAPSHOT), (VIRGINIA, _US_1120), (BEIJING, _BJ_1120)),
        regions=_ALL3,
    ),
    "qwen-vl-ocr-2025-08-28": _p28("qwen-vl-ocr-2025-08-28"),
    "qwen-vl-ocr-2025-04-13": _p28("qwen-vl-ocr-2025-04-13", supports_advanced_recognition=False),
    "qwen-vl-ocr-2024-10-28": _p28("qwen-vl-ocr-2024-10-28", supports_tasks=False, supports_advanced_recognition=False),
    # The guide's update of 2026-06-16. Max output: the API reference says 32,768 (the console's model card says
    # 16,384); we take the API reference's. Images up to 20 MB by URL, 10 MB inline. No list price recorded yet.
    "qwen3.5-ocr": ModelSpec(
        "qwen3.5-ocr",
        patch=32,
        min_pixels=3072,
        max_pixels=8_388_608,
        max_pixels_ceiling=30_720_000,
        max_tokens=32_768,
        rpm=6000,
        tpm=30_000_000,
        regions=frozenset({BEIJING}),
        task_prompt_combines=True,
        max_url_bytes=20_000_000,
        max_inline_bytes=10_000_000,
    ),
}


def model_spec(name: str) -> ModelSpec:
    """The spec of a model; an unknown name (a self-hosted Qwen-VL, a new snapshot) gets the 32-px defaults (and
    the list prices of ``qwen-vl-ocr``, but no region check), or the 28-px ones for a Qwen2/2.5-VL name."""
    spec = _MODELS.get(name)
    if spec is not None:
        return spec
    if name.startswith("qwen-vl-ocr-2024") or "qwen2-vl" in name.lower() or "qwen2.5-vl" in name.lower():
        return replace(_p28(name), prices=(), regions=None)
    return replace(_MODELS[DEFAULT_MODEL], name=name, regions=None)


def register_model(spec: ModelSpec) -> None:
    """Add or replace a model's spec, e.g. for a self-hosted server with its own pixel budget."""
    _MODELS[spec.name] = spec


def model_price(model: str | ModelSpec, region: str | None = None) -> Price | None:
    """The price of a model in a region (default Singapore), or ``None`` when none is known there.

    >>> model_price("qwen-vl-ocr", "intl").input_per_mtok, model_price("qwen-vl-ocr", "cn").input_per_mtok
    (0.07, 0.043)
    >>> model_price("qwen-vl-ocr-latest", "intl") is None      # Beijing only
    True
    """
    spec = model if isinstance(model, ModelSpec) else model_spec(model)
    return spec.price(region)


def suggest_model(region: str | None, *, task: Task | None = None) -> str:
    """A model offered in ``region`` that does every built-in task: ``qwen3.5-ocr`` in Beijing (the docs'
    recommendation), ``qwen-vl-ocr`` elsewhere (it is the 2025-11-20 snapshot there).

    >>> suggest_model("cn-beijing"), suggest_model("intl"), suggest_model(None)
    ('qwen3.5-ocr', 'qwen-vl-ocr', 'qwen-vl-ocr')
    """
    del task  # every suggestion does all seven tasks
    if region is not None and canonical_region(region) == BEIJING:
        return "qwen3.5-ocr"
    return "qwen-vl-ocr"


_warned: set[tuple[str, ...]] = set()


def _warn_once(key: tuple[str, ...], message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message)


def _where(regions: Iterable[str]) -> str:
    return ", ".join(describe_region(r) for r in sorted(regions))


def check_call(spec: ModelSpec, *, task: Task | None, prompt: str | None, region: str | None) -> None:
    """The model-and-region checks of one call, before anything is sent.

    Raises :class:`~qwen_ocr.errors.UnsupportedTaskError` for a task the model cannot do, naming a model that can
    in the client's region. Logs (once) a ``prompt=`` that a task will override (every model but those that
    combine them, ``qwen3.5-ocr``), and a model the service does not offer in the client's region (the service
    has the last word: the call is still sent).
    """
    where = describe_region(region) if region is not None else "your region"
    if task is not None and not spec.supports_tasks:
        raise UnsupportedTaskError(
            f"{spec.name} ignores built-in tasks; use a model from qwen-vl-ocr-2025-04-13 on, e.g. "
            f"model={suggest_model(region)!r} (offered in {where}), for task=.",
        )
    if task is Task.ADVANCED_RECOGNITION and not spec.supports_advanced_recognition:
        raise UnsupportedTaskError(
            f"advanced_recognition needs qwen-vl-ocr-2025-08-28 or later; {spec.name} cannot do it. Use "
            f"model={suggest_model(region)!r} (offered in {where}).",
        )
    if task is not None and prompt and not spec.task_prompt_combines:
        _warn_once(
            ("prompt", spec.name),
            f"qwen_ocr: prompt= is ignored when task= is set with {spec.name}: the task's own prompt is used. "
            "Only qwen3.5-ocr combines a task with a prompt; drop one of the two.",
        )
    offered = spec.offered_in(region)
    if offered is False and spec.regions:
        _warn_once(
            ("region", spec.name, str(region)),
            f"qwen_ocr: {spec.name} is not offered in {where}, only in {_where(spec.regions)}; the service will "
            f"likely refuse it. Use model={suggest_model(region)!r} there, or a key and region= of "
            f"{_where(spec.regions)}.",
        )
