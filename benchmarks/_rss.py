"""Peak resident memory of the current process, measured so that a child process does not inherit its parent's."""

from __future__ import annotations

import resource

__all__ = ["peak_rss_kib"]


def peak_rss_kib() -> int:
    """This process's peak resident set in KiB.

    Linux's ``VmHWM`` belongs to the address space and starts again at ``exec``; ``ru_maxrss`` belongs to the
    process and survives ``exec``, so a child started by a big parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
