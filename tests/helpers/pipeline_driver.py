"""Runs ``alignkit run`` in its own process; ``KILL_DURING_CHECKPOINT_STEP=k`` SIGKILLs it while the
step-k checkpoint is being written (see sft_driver)."""

from __future__ import annotations

import os
import signal
import sys

import alignkit.io
from alignkit.cli import app


def main() -> None:
    kill_step = os.environ.get("KILL_DURING_CHECKPOINT_STEP")
    if kill_step:
        original = alignkit.io.write_manifest

        def write_manifest_or_die(folder, extra=None):
            if extra and extra.get("step") == int(kill_step):
                os.kill(os.getpid(), signal.SIGKILL)
            return original(folder, extra)

        alignkit.io.write_manifest = write_manifest_or_die
    sys.argv = ["alignkit", "run", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
