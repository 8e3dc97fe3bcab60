"""Image and document parts of chat messages: recognise every shape LangChain users send, and load them safely.

Recognition goes through langchain-core's own content blocks wherever they cover a shape: each dict part is turned
into a standard v1 block with ``BaseMessage.content_blocks`` (langchain-core >= 1.0), which reads

* LangChain standard v1 blocks: ``{"type": "image", "url" | "base64" | "file_id": ...}``, ``{"type": "file", ...}``;
* LangChain v0 blocks: ``{"type": "image" | "file", "source_type": "url" | "base64" | "id", ...}``;
* OpenAI chat completions: ``{"type": "image_url", "image_url": {"url": ...}}`` and
  ``{"type": "file", "file": {"file_data": "data:application/pdf;base64,...", "filename": ...}}`` (or ``file_id``);
* Anthropic: ``{"type": "image" | "document", "source": {"type": "base64" | "url", ...}}``.

Written here, for the shapes langchain-core does not turn into an image or file block:

* a bare ``data:image/...`` string in a content list (core reads any string as text);
* ``{"type": "image_url", "image_url": "<url>"}`` (the URL as a plain string);
* OpenAI responses ``{"type": "input_image", "image_url": ... | "file_id": ...}`` and
  ``{"type": "input_file", "file_data" | "file_url" | "file_id": ...}``;
* Anthropic ``{"type": "image" | "document", "source": {"type": "file", "file_id": ...}}`` (core puts the file id
  in the block's own ``id``, where it is no longer a file id).

What a block holds: ``image`` blocks and ``file`` blocks whose ``mime_type`` is ``image/*`` are images; ``file``
blocks whose ``mime_type`` is ``application/pdf`` or missing are documents (read page by page; the engine recognises
PDFs, TIFFs and images by their bytes); ``file`` blocks of any other type (``text/plain``, ...) are left alone.

Every URL found is classified: ``data:`` (inline bytes), ``http(s)://`` or ``oss://`` (the service fetches an image
itself; a document is downloaded by the reader, through :mod:`qwen_ocr.fetch`), ``file://`` or a plain path (a local
file: read only inside an explicitly allowed directory), a file id (cannot be read by OCR) or another scheme
(refused). Nothing here touches the network; local files are read only by :func:`load_image`, and only inside
``allowed_dir``.

Example::

    from langchain_qwen_ocr.image_reader.parts import image_ref, part_ref

    image_ref({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}})
    # ImageRef(kind='url', value='https://example.com/a.png', mime_type=None, media='image', name=None)
    part_ref({"type": "file", "base64": "JVBERi0...", "mime_type": "application/pdf"}).media
    # 'document'
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

from langchain_core.messages import HumanMessage

from qwen_ocr import InvalidImageError
from qwen_ocr.imaging import MAX_ENCODED_BYTES, ImageInput

__all__ = [
    "MAX_LOCAL_BYTES",
    "ImageRef",
    "LoadedImage",
    "Media",
    "RefKind",
    "check_allowed_dir",
    "find_image_parts",
    "find_parts",
    "image_ref",
    "load_image",
    "part_ref",
    "ref_from_string",
]

RefKind = Literal["url", "base64", "local", "file_id", "unsupported"]
"""How an image part names its image: a remote URL, inline base64, a local path or ``file://`` URL, a provider
file id, or something that cannot be read (another URL scheme, a data URL that is not base64)."""

MAX_LOCAL_BYTES = MAX_ENCODED_BYTES * 5
"""The largest local file, inline image or document accepted (the core downscales; nothing larger can be sent)."""

Media = Literal["image", "document"]
"""What a part holds: one image (read with one request), or a document (a PDF, read page by page)."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_REMOTE_SCHEMES = frozenset({"http", "https", "oss"})


@dataclass(frozen=True)
class ImageRef:
    """Where an image part's image is.

    Attributes:
        kind: see :data:`RefKind`.
        value: the URL, the base64 payload (without any ``data:`` header), the path or ``file://`` URL, or the id.
        mime_type: the MIME type the part declares, if any (the bytes decide in the end).
        media: ``"image"`` or ``"document"`` (see :data:`Media`).
        name: the file name the part gives (OpenAI ``filename``), if any.

    >>> ImageRef("url", "https://example.com/a.png").describe()
    'https://example.com/a.png'
    """

    kind: RefKind
    value: str
    mime_type: str | None = None
    media: Media = "image"
    name: str | None = None

    def describe(self, limit: int = 80) -> str:
        """A short, human description for messages and logs (never the base64 payload)."""
        if self.kind == "base64":
            size = len(self.value) * 3 // 4
            what = self.mime_type or ("image" if self.media == "image" else "file")
            named = f" {self.name[:limit]!r}" if self.name else ""
            return f"an inline {what}{named} ({size:,} bytes)"
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


def _media_of(block_type: str, mime: str | None) -> Media | None:
    """What a standard block holds: an image, a document, or neither (a file of another type: left alone)."""
    if block_type == "image" or _is_image_mime(mime):
        return "image"
    if mime is None or mime.strip().lower() in ("application/pdf", "application/x-pdf"):
        return "document"
    return None


def _with(ref: ImageRef, media: Media, name: str | None) -> ImageRef:
    return ImageRef(ref.kind, ref.value, ref.mime_type, media, name)


def _from_block(block: Mapping[str, Any], name: str | None = None) -> ImageRef | None:
    """The image or document a standard v1 ``image`` / ``file`` block holds."""
    mime = block.get("mime_type") if isinstance(block.get("mime_type"), str) else None
    extras = block.get("extras")
    if name is None and isinstance(extras, Mapping) and isinstance(extras.get("filename"), str):
        name = str(extras["filename"])
    if isinstance(block.get("base64"), str):
        ref = ImageRef("base64", str(block["base64"]).strip(), mime)
    elif isinstance(block.get("url"), str):
        ref = ref_from_string(str(block["url"]), mime)
    elif isinstance(block.get("file_id"), str):
        ref = ImageRef("file_id", str(block["file_id"]), mime)
    else:
        return None
    media = _media_of(str(block.get("type")), ref.mime_type)
    return _with(ref, media, name) if media is not None else None


_CORE_TYPES = frozenset({"image", "image_url", "file", "document"})
"""Part types langchain-core's ``content_blocks`` may turn into an ``image`` or ``file`` block."""


def _standard_block(part: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The part as langchain-core's standard ``image`` / ``file`` block, or ``None`` when core does not read it so."""
    try:
        blocks = HumanMessage(content=[dict(part)]).content_blocks
    except Exception:  # a malformed part core's translators trip over: not an image core knows
        return None
    if len(blocks) != 1 or blocks[0].get("type") not in ("image", "file"):
        return None
    return blocks[0]


def _hand_written(part: Mapping[str, Any]) -> ImageRef | None:
    """The shapes langchain-core does not turn into an image or file block (see the module's description)."""
    kind = part.get("type")
    source = part.get("source")
    if kind in ("image", "document") and isinstance(source, Mapping) and source.get("type") == "file":
        if not isinstance(source.get("file_id"), str):
            return None
        return ImageRef("file_id", str(source["file_id"]), None, "image" if kind == "image" else "document")
    if kind in ("image_url", "input_image") and isinstance(part.get("image_url"), str):
        return ref_from_string(str(part["image_url"]))
    if kind == "input_image" and isinstance(part.get("file_id"), str):
        return ImageRef("file_id", str(part["file_id"]))
    if kind == "input_file":
        name = str(part["filename"]) if isinstance(part.get("filename"), str) else None
        for key in ("file_data", "file_url"):
            if isinstance(part.get(key), str):
                ref = ref_from_string(str(part[key]))
                media = _media_of("file", ref.mime_type)
                return _with(ref, media, name) if media is not None else None
        if isinstance(part.get("file_id"), str):
            return ImageRef("file_id", str(part["file_id"]), None, "document", name)
    return None


def part_ref(part: object) -> ImageRef | None:
    """The image or document a content part holds, or ``None`` when the part holds neither.

    >>> part_ref({"type": "file", "base64": "JVBERi0=", "mime_type": "application/pdf"}).media
    'document'
    >>> part_ref({"type": "text", "text": "hello"}) is None
    True
    """
    if isinstance(part, str):
        stripped = part.strip()
        if stripped[:11].lower() == "data:image/" and "," in stripped:
            return ref_from_string(stripped)
        return None
    if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
        return None
    found = _hand_written(part)
    if found is not None or part["type"] not in _CORE_TYPES:
        return found
    block = _standard_block(part)
    return _from_block(block) if block is not None else None


def image_ref(part: object) -> ImageRef | None:
    """The image a content part holds, or ``None`` when the part is not an image part (a PDF is not).

    >>> image_ref({"type": "image", "base64": "iVBORw0K", "mime_type": "image/png"})
    ImageRef(kind='base64', value='iVBORw0K', mime_type='image/png', media='image', name=None)
    >>> image_ref({"type": "text", "text": "hello"}) is None
    True
    """
    ref = part_ref(part)
    return ref if ref is not None and ref.media == "image" else None


def find_parts(content: str | Sequence[Any]) -> list[tuple[int, ImageRef]]:
    """``(position, ref)`` of every image and document part of a message's content, in order.

    >>> pdf = {"type": "file", "base64": "JVBERi0=", "mime_type": "application/pdf"}
    >>> [(position, ref.media) for position, ref in find_parts(["x", pdf])]
    [(1, 'document')]
    """
    if isinstance(content, str):
        return []
    found: list[tuple[int, ImageRef]] = []
    for position, part in enumerate(content):
        ref = part_ref(part)
        if ref is not None:
            found.append((position, ref))
    return found


def find_image_parts(content: str | Sequence[Any]) -> list[tuple[int, ImageRef]]:
    """``(position, ref)`` of every image part of a message's content, in order (none for string content).

    >>> find_image_parts(["look:", {"type": "image_url", "image_url": "https://example.com/a.png"}])
    [(1, ImageRef(kind='url', value='https://example.com/a.png', mime_type=None, media='image', name=None))]
    """
    return [(position, ref) for position, ref in find_parts(content) if ref.media == "image"]


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
            what = "image" if ref.media == "image" else "file"
            raise InvalidImageError(f"the inline {what}'s base64 data is broken.", code="InvalidDataURL") from None


def load_image(ref: ImageRef, allowed_dir: Path | None) -> LoadedImage:
    """Make an image or document part ready for reading; local files are read only inside ``allowed_dir``.

    Remote URLs are passed on as they are (the service fetches an image; the reader downloads a document through
    :mod:`qwen_ocr.fetch`; nothing is downloaded here).

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
        what = "an image" if ref.media == "image" else "a file"
        raise InvalidImageError(
            f"{what} given by {ref.describe()} lives in a provider's file store, which OCR cannot read; send its "
            "data (base64 or a data: URL) or an http(s) URL instead.",
            code="FileIdNotReadable",
        )
    else:
        raise InvalidImageError(
            f"{ref.describe()} cannot be read: use an http(s) URL, a base64 data: URL or inline base64.",
            code="UnsupportedURL",
        )
    return LoadedImage(data, hashlib.sha256(data).hexdigest())
