"""Reliability and security: faults of every kind, timeouts and cancellation, crash and resume, fuzzing, SSRF,
secrets. Everything runs offline against the loopback emulator."""
