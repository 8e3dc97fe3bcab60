"""The package version, read by the build backend and by ``qwen_ocr.__version__``."""

__all__ = ["__version__"]

__version__ = "0.1.0"
