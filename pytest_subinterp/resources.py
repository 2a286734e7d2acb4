"""Will a battery fit in this process?  A check before the C helper creates its interpreters.

CPython does not fail cleanly when it runs out of memory while creating a sub-interpreter: under
an address-space limit (``ulimit -v``) the 81st of 200 isolated interpreters segfaulted inside
``Py_NewInterpreterFromConfig`` (3.13.0, measured here).  So the battery child first estimates
what the battery needs and, when that is more than this process may use, reports it as a
creation failure naming the interpreters, the estimate and the limit, instead of crashing.

The estimates are deliberately generous (measured on 3.13.0, x86_64, with pytest imported in each
interpreter): an isolated interpreter maps about 12 MB and keeps 10-20 MB resident, a legacy one
less; every native thread (K creator threads + T battery threads) maps a stack of RLIMIT_STACK
(8 MB by default).  Only a battery that clearly cannot fit is refused.
"""

from __future__ import annotations

import os
import resource

MB = 1024 * 1024
# Per interpreter: (address space, resident) in bytes, twice what was measured.
PER_INTERPRETER = {"isolated": (24 * MB, 40 * MB), "legacy": (12 * MB, 8 * MB)}


def _vm_size() -> int | None:
    """This process's mapped address space now (Linux /proc), or None."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _available_memory() -> int | None:
    """Memory the kernel can still give: MemAvailable, capped by a cgroup v2 limit if any."""
    available = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        return None
    try:
        with open("/sys/fs/cgroup/memory.max") as limit_file:
            limit = limit_file.read().strip()
        with open("/sys/fs/cgroup/memory.current") as current_file:
            current = int(current_file.read().strip())
        if limit != "max" and available is not None:
            available = min(available, int(limit) - current)
    except (OSError, ValueError):
        pass
    return available


def shortfall(config: str, interpreters: int, threads: int) -> str | None:
    """Why a battery of this shape cannot fit in this process, or None when it may."""
    vm_per_interp, rss_per_interp = PER_INTERPRETER.get(config, PER_INTERPRETER["isolated"])
    stack = resource.getrlimit(resource.RLIMIT_STACK)[0]
    stack = 8 * MB if stack in (resource.RLIM_INFINITY, -1) or stack <= 0 else stack
    need_vm = interpreters * vm_per_interp + (interpreters + threads) * stack
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    mapped = _vm_size()
    if limit not in (resource.RLIM_INFINITY, -1) and mapped is not None and mapped + need_vm > limit:
        return (f"about {need_vm // MB} MB of address space for {interpreters} {config} interpreters and "
                f"{interpreters + threads} threads, but this process may map only {limit // MB} MB "
                f"(RLIMIT_AS, 'ulimit -v'), {mapped // MB} MB of it already")
    need_rss = interpreters * rss_per_interp
    available = _available_memory()
    if available is not None and need_rss > available:
        return (f"about {need_rss // MB} MB of memory for {interpreters} {config} interpreters, but only "
                f"{max(available, 0) // MB} MB is available (MemAvailable, cgroup memory.max)")
    return None
