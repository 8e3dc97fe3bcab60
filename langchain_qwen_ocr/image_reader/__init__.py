"""``ImageReader``: images in chat messages become text, so ``ImageReader() | llm`` lets any text model read them.

Example::

    from langchain_qwen_ocr.image_reader import ImageReader

    chain = prompt | ImageReader() | llm | parser
    ImageReader(template="higress")                # the Higress ai-image-reader layout
    ImageReader(allowed_dir="uploads/")            # local paths in messages are read only from this directory

Modules: :mod:`.reader` (the Runnable), :mod:`.parts` (recognising and loading image parts), :mod:`.templates`
(how the text is put into messages).
"""

from __future__ import annotations

from .parts import ImageRef, find_image_parts, image_ref, load_image
from .reader import ImageReader, OnError, ocr_options, to_messages
from .templates import HIGRESS_PROMPT, ImageText, Template, escape_image_text, quoted_block

__all__ = [
    "HIGRESS_PROMPT",
    "ImageReader",
    "ImageRef",
    "ImageText",
    "OnError",
    "Template",
    "escape_image_text",
    "find_image_parts",
    "image_ref",
    "load_image",
    "ocr_options",
    "quoted_block",
    "to_messages",
]
