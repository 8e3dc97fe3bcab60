"""Batch jobs (``qwen_ocr.batch``) against the emulator's Batch File API: submit, resume, cancel, validation,
refusals, cache, cost. Everything runs offline on loopback."""
