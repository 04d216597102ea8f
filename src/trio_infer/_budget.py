"""How many connections this process can hold open.

This is the file-descriptor half of the connection budget. The ephemeral-port half (per
source address and destination pair) arrives with the connection-budget work; until then
``max_connections=None`` resolves to the descriptor budget alone.
"""

from __future__ import annotations

from typing import Final

__all__ = ["FD_HEADROOM", "fd_budget"]

#: Descriptors left for everything that is not a client connection: stdio, log files,
#: listening sockets of a co-hosted test server, trio's wakeup socketpair, imports.
FD_HEADROOM: Final = 64


def fd_budget() -> int:
    """RLIMIT_NOFILE's soft limit minus :data:`FD_HEADROOM` (4096 minus it where unknown)."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            soft = 1 << 20
    except (ImportError, OSError, ValueError):
        soft = 4096
    return max(1, soft - FD_HEADROOM)
