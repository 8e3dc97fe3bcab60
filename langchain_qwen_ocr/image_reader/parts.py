"""Image parts of chat messages: recognise every shape LangChain users send, and load them safely.

Recognised shapes (``ref`` is what :func:`image_ref` returns for each):

* LangChain standard v1 blocks: ``{"type": "image", "url": ...}``, ``{"type": "image", "base64": ...,
  "mime_type": ...}``, ``{"type": "image", "file_id": ...}``;
* LangChain v0 blocks: ``{"type": "image", "source_type": "url" | "base64" | "id", "url" | "data" | "id": ...}``;
* OpenAI chat: ``{"type": "image_url", "image_url": {"url": ...}}`` and ``{"type": "image_url", "image_url": "..."}``;
  OpenAI responses: ``{"type": "input_image", "image_url": "..."}``;
* Anthropic: ``{"type": "image", "source": {"type": "base64" | "url" | "file", ...}}``;
* ``file`` blocks (v0 or v1) whose ``mime_type`` is ``image/*``;
* a bare ``data:image/...`` string in a content list.

Every URL found is classified: ``data:`` (inline bytes), ``http(s)://`` or ``oss://`` (the service fetches it),
``file://`` or a plain path (a local file: read only inside an explicitly allowed directory), a file id (cannot be
read by OCR) or another scheme (refused). Nothing here touches the network; local files are read only by
:func:`load_image`, and only inside ``allowed_dir``.

Example::

    from langchain_qwen_ocr.image_reader.parts import image_ref

    image_ref({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}})
    # ImageRef(kind='url', value='https://example.com/a.png', mime_type=None)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from qwen_ocr import InvalidImageError
from qwen_ocr.imaging import MAX_ENCODED_BYTES, ImageInput

__all__ = [
    "MAX_LOCAL_BYTES",
    "ImageRef",
    "LoadedImage",
    "RefKind",
    "check_allowed_dir",
    "find_image_parts",
    "image_ref",
    "load_image",
    "ref_from_string",
]

RefKind = Literal["url", "base64", "local", "file_id", "unsupported"]
"""How an image part names its image: a remote URL, inline base64, a local path or ``file://`` URL, a provider
file id, or something that cannot be read (another URL scheme, a data URL that is not base64)."""

MAX_LOCAL_BYTES = MAX_ENCODED_BYTES * 5
"""The largest local file or inline image accepted (the core downscales; nothing larger can be sent)."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_REMOTE_SCHEMES = frozenset({"http", "https", "oss"})


@dataclass(frozen=True)
class ImageRef:
    """Where an image part's image is.

    Attributes:
        kind: see :data:`RefKind`.
        value: the URL, the base64 payload (without any ``data:`` header), the path or ``file://`` URL, or the id.
        mime_type: the MIME type the part declares, if any (the image's bytes decide in the end).

    >>> ImageRef("url", "https://example.com/a.png").describe()
    'https://example.com/a.png'
    """

    kind: RefKind
    value: str
    mime_type: str | None = None

    def describe(self, limit: int = 80) -> str:
        """A short, human description for messages and logs (never the base64 payload)."""
        if self.kind == "base64":
            size = len(self.value) * 3 // 4
            return f"an inline {self.mime_type or 'image'} ({size:,} bytes)"
        if self.kind == "file_id":
            return f"file id {self.value[:limit]!r}"
        shown = self.value if len(self.value) <= limit else self.value[: limit - 3] + "..."
        return shown


@dataclass(frozen=True)
class LoadedImage:
    """An image ready for the client, with the digest that identifies its content.

    Attributes:
        image: what the client reads: the remote URL string, or the image's bytes.
        digest: SHA-256 (hex) of the bytes, or of the URL string for a remote URL.

    >>> load_image(ImageRef("base64", "aGVsbG8="), None).image
    b'hello'
    """

    image: ImageInput
    digest: str


def ref_from_string(url: str, mime_type: str | None = None) -> ImageRef:
    """Classify a URL or path string.

    >>> ref_from_string("data:image/png;base64,iVBORw0K").kind
    'base64'
    >>> ref_from_string("file:///etc/passwd").kind, ref_from_string("../secret.png").kind
    ('local', 'local')
    >>> ref_from_string("ftp://example.com/a.png").kind
    'unsupported'
    """
    text = url.strip()
    if text[:5].lower() == "data:":
        header, sep, payload = text.partition(",")
        if not sep or ";base64" not in header.lower():
            return ImageRef("unsupported", text[:40], mime_type)
        declared = header[5:].split(";", 1)[0].strip() or None
        return ImageRef("base64", payload.strip(), declared or mime_type)
    match = _SCHEME.match(text)
    if match:
        scheme = match.group(1).lower()
        if scheme in _REMOTE_SCHEMES:
            return ImageRef("url", text, mime_type)
        if scheme == "file":
            return ImageRef("local", text, mime_type)
        return ImageRef("unsupported", text, mime_type)
    return ImageRef("local", text, mime_type)


def _is_image_mime(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith("image/")


_Place = tuple[str | None, str, Literal["base64", "url", "file_id"]]
"""Where a content-part format keeps an image: ``(kind, key, holds)``: when the part's kind field says ``kind`` (or
always, for ``None``), ``key`` holds a string that is a ``holds``."""

_V1: tuple[_Place, ...] = ((None, "base64", "base64"), (None, "url", "url"), (None, "file_id", "file_id"))
"""LangChain v1 image blocks (``{"type": "image", "base64" | "url" | "file_id": ...}``)."""
_V0: tuple[_Place, ...] = (("url", "url", "url"), ("base64", "data", "base64"), ("id", "id", "file_id"))
"""LangChain v0 blocks (``source_type``: ``"url"``, ``"base64"`` or ``"id"``)."""
_ANTHROPIC: tuple[_Place, ...] = (("base64", "data", "base64"), ("url", "url", "url"), ("file", "file_id", "file_id"))
"""Anthropic ``source`` objects (``type``: ``"base64"``, ``"url"`` or ``"file"``)."""


def _ref_from(
    part: Mapping[str, Any], places: tuple[_Place, ...], *, kind_key: str = "", mime_key: str = "mime_type"
) -> ImageRef | None:
    """The image of the first of ``places`` the part has (the part's kind under ``kind_key``, its mimetype under
    ``mime_key``)."""
    mime = part.get(mime_key) if isinstance(part.get(mime_key), str) else None
    for kind, key, holds in places:
        value = part.get(key)
        if (kind is None or part.get(kind_key) == kind) and isinstance(value, str):
            if holds == "url":
                return ref_from_string(value, mime)
            return ImageRef(holds, value.strip() if holds == "base64" else value, mime)
    return None


def image_ref(part: object) -> ImageRef | None:
    """The image a content part holds, or ``None`` when the part is not an image part.

    >>> image_ref({"type": "image", "base64": "iVBORw0K", "mime_type": "image/png"})
    ImageRef(kind='base64', value='iVBORw0K', mime_type='image/png')
    >>> image_ref({"type": "text", "text": "hello"}) is None
    True
    """
    if isinstance(part, str):
        stripped = part.strip()
        if stripped[:11].lower() == "data:image/" and "," in stripped:
            return ref_from_string(stripped)
        return None
    if not isinstance(part, Mapping):
        return None
    kind = part.get("type")
    if kind in ("image_url", "input_image"):
        value = part.get("image_url")
        if isinstance(value, Mapping) and isinstance(value.get("url"), str):
            return ref_from_string(str(value["url"]))
        if isinstance(value, str):
            return ref_from_string(value)
        if kind == "input_image" and isinstance(part.get("file_id"), str):
            return ImageRef("file_id", str(part["file_id"]))
        return None
    if kind == "image":
        source = part.get("source")
        if isinstance(source, Mapping):
            return _ref_from(source, _ANTHROPIC, kind_key="type", mime_key="media_type")
        if "source_type" in part:
            return _ref_from(part, _V0, kind_key="source_type")
        return _ref_from(part, _V1)
    if kind == "file" and _is_image_mime(part.get("mime_type")):
        return _ref_from(part, _V0, kind_key="source_type") if "source_type" in part else _ref_from(part, _V1)
    return None


def find_image_parts(content: str | Sequence[Any]) -> list[tuple[int, ImageRef]]:
    """``(position, ref)`` of every image part of a message's content, in order (none for string content).

    >>> find_image_parts(["look:", {"type": "image_url", "image_url": "https://example.com/a.png"}])
    [(1, ImageRef(kind='url', value='https://example.com/a.png', mime_type=None))]
    """
    if isinstance(content, str):
        return []
    found: list[tuple[int, ImageRef]] = []
    for position, part in enumerate(content):
        ref = image_ref(part)
        if ref is not None:
            found.append((position, ref))
    return found


def check_allowed_dir(value: str | os.PathLike[str] | None) -> Path | None:
    """The allowed directory, resolved (symlinks followed); it must exist.

    Raises:
        ValueError: the directory does not exist or is not a directory.
    """
    if value is None:
        return None
    path = Path(os.fspath(value)).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"allowed_dir={os.fspath(value)!r} is not an existing directory.")
    return path


def _local_path(ref: ImageRef) -> Path:
    if _SCHEME.match(ref.value):
        parsed = urlparse(ref.value)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidImageError(
                f"{ref.describe()} names another host; only local file:// URLs can be read.",
                code="UnsupportedURL",
            )
        return Path(url2pathname(unquote(parsed.path)))
    return Path(ref.value)


def _read_local(ref: ImageRef, allowed_dir: Path | None) -> bytes:
    if allowed_dir is None:
        raise InvalidImageError(
            f"local files and file:// URLs are not read ({ref.describe()}) unless allowed_dir= names a directory "
            "that holds them.",
            code="LocalFileRefused",
        )
    path = _local_path(ref)
    candidate = path if path.is_absolute() else allowed_dir / path
    real = candidate.resolve()  # '..' and symlinks resolved before the check
    if real != allowed_dir and allowed_dir not in real.parents:
        raise InvalidImageError(
            f"{ref.describe()} is outside the allowed directory; it is not read.",
            code="LocalFileRefused",
        )
    try:
        with real.open("rb") as fh:
            data = fh.read(MAX_LOCAL_BYTES + 1)
    except FileNotFoundError:
        raise InvalidImageError(
            f"no such file in the allowed directory: {ref.describe()}.", code="FileNotFound"
        ) from None
    except IsADirectoryError:
        raise InvalidImageError(f"{ref.describe()} is a directory, not an image.", code="IsADirectory") from None
    except OSError as exc:
        raise InvalidImageError(f"cannot read {ref.describe()}: {exc.strerror or exc}.", code="ReadError") from None
    if len(data) > MAX_LOCAL_BYTES:
        raise _too_large(ref)
    return data


def _too_large(ref: ImageRef) -> InvalidImageError:
    return InvalidImageError(f"{ref.describe()} is too large to be an image the service reads.", code="ImageTooLarge")


def _decode_base64(ref: ImageRef) -> bytes:
    if len(ref.value) > MAX_LOCAL_BYTES * 4 // 3 + 4:
        raise _too_large(ref)
    try:
        return base64.b64decode("".join(ref.value.split()), validate=True)
    except (binascii.Error, ValueError):
        try:  # URL-safe alphabet, or missing padding
            payload = "".join(ref.value.split())
            return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        except (binascii.Error, ValueError):
            raise InvalidImageError("the inline image's base64 data is broken.", code="InvalidDataURL") from None


def load_image(ref: ImageRef, allowed_dir: Path | None) -> LoadedImage:
    """Make an image part ready for the client; local files are read only inside ``allowed_dir``.

    Remote URLs are passed on as they are (the service fetches them; nothing is downloaded here).

    Raises:
        InvalidImageError: the image cannot or may not be read (``code`` says why: ``LocalFileRefused``,
            ``UnsupportedURL``, ``FileIdNotReadable``, ``InvalidDataURL``, ...).
    """
    if ref.kind == "url":
        return LoadedImage(ref.value, hashlib.sha256(ref.value.encode("utf-8")).hexdigest())
    if ref.kind == "base64":
        data = _decode_base64(ref)
    elif ref.kind == "local":
        data = _read_local(ref, allowed_dir)
    elif ref.kind == "file_id":
        raise InvalidImageError(
            f"an image given by {ref.describe()} lives in a provider's file store; OCR needs its URL or data.",
            code="FileIdNotReadable",
        )
    else:
        raise InvalidImageError(
            f"{ref.describe()} cannot be read: use an http(s) URL, a base64 data: URL or inline base64.",
            code="UnsupportedURL",
        )
    return LoadedImage(data, hashlib.sha256(data).hexdigest())
