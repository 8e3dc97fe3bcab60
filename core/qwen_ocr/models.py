"""What we know of each Qwen-OCR model: patch size, pixel budget, output and rate limits, price (pure).

The numbers come from the vendor's model table (see the protocol notes). The stable alias ``qwen-vl-ocr`` has
moved between snapshots; we treat it as the 2025-11-20 snapshot (32 px patches) as the late-2025 docs say, with
its own 600 RPM and 4,096 max tokens. Register a model of your own (a self-hosted Qwen-VL, say) with
:func:`register_model`.

Example::

    from qwen_ocr.models import model_spec
    spec = model_spec("qwen-vl-ocr-latest")
    spec.patch, spec.max_pixels        # (32, 8388608)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["DEFAULT_MODEL", "ModelSpec", "model_spec", "register_model"]

DEFAULT_MODEL = "qwen-vl-ocr"


@dataclass(frozen=True)
class ModelSpec:
    """Limits and prices of one model.

    Attributes:
        name: the model id sent on the wire.
        patch: pixels per side of one image token (28 or 32).
        min_pixels: default lower pixel budget of an image.
        max_pixels: default upper pixel budget of an image.
        max_pixels_ceiling: the largest ``max_pixels`` the service accepts.
        max_tokens: default output limit.
        rpm: requests per minute allowed per account.
        tpm: tokens per minute allowed per account (input + output).
        supports_tasks: whether built-in ``ocr_options.task`` works.
        supports_advanced_recognition: whether the ``advanced_recognition`` task works.
        input_price_per_mtok: price per million input tokens, in USD (international region).
        output_price_per_mtok: price per million output tokens, in USD (international region).
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
    input_price_per_mtok: float = 0.72
    output_price_per_mtok: float = 0.72

    @property
    def max_image_tokens(self) -> int:
        """The most tokens one image may cost (the service caps a single image at 30,000)."""
        return min(30_000, self.max_pixels_ceiling // (self.patch * self.patch))


def _p28(name: str, **flags: bool) -> ModelSpec:
    """A snapshot with 28-px patches (2024-10-28 to 2025-08-28)."""
    return ModelSpec(name, patch=28, min_pixels=3136, max_pixels=6_422_528, max_pixels_ceiling=23_520_000, **flags)


_MODELS: dict[str, ModelSpec] = {
    "qwen-vl-ocr": ModelSpec("qwen-vl-ocr"),
    "qwen-vl-ocr-latest": ModelSpec("qwen-vl-ocr-latest", max_tokens=8192, rpm=1200),
    "qwen-vl-ocr-2025-11-20": ModelSpec("qwen-vl-ocr-2025-11-20", max_tokens=8192, rpm=1200),
    "qwen-vl-ocr-2025-08-28": _p28("qwen-vl-ocr-2025-08-28"),
    "qwen-vl-ocr-2025-04-13": _p28("qwen-vl-ocr-2025-04-13", supports_advanced_recognition=False),
    "qwen-vl-ocr-2024-10-28": _p28("qwen-vl-ocr-2024-10-28", supports_tasks=False, supports_advanced_recognition=False),
}


def model_spec(name: str) -> ModelSpec:
    """The spec of a model; an unknown name (a self-hosted Qwen-VL, a new snapshot) gets the 32-px defaults."""
    spec = _MODELS.get(name)
    if spec is not None:
        return spec
    if name.startswith("qwen-vl-ocr-2024") or "qwen2-vl" in name.lower() or "qwen2.5-vl" in name.lower():
        return _p28(name)
    return replace(_MODELS[DEFAULT_MODEL], name=name)


def register_model(spec: ModelSpec) -> None:
    """Add or replace a model's spec, e.g. for a self-hosted server with its own pixel budget."""
    _MODELS[spec.name] = spec
