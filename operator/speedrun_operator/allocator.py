"""The operator process's allocator: a few malloc arenas shared by the handler threads, not one each."""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8
"""glibc's mallopt parameter, the same as the MALLOC_ARENA_MAX environment variable."""


def limit_arenas(arenas: int = 2) -> bool:
    """glibc gives threads that allocate at the same time arenas of their own (up to eight per core) and keeps
    what each freed; with the handler threads of a burst that is much of the operator's resident memory, for
    no speed the operator needs (its threads mostly wait on the API server). True when the limit took."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))
