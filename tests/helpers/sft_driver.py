"""Runs SFT from command-line overrides in its own process (used by resume and multi-process tests).

``KILL_DURING_CHECKPOINT_STEP=k`` makes the process SIGKILL itself while writing the step-k
checkpoint, after its weights are written but before its manifest: a real half-written checkpoint.
"""

from __future__ import annotations

import os
import signal
import sys

import alignkit.io
from alignkit.config.base import load_config
from alignkit.recipes.sft import SFTConfig, run_sft


def install_kill_switch() -> None:
    kill_step = os.environ.get("KILL_DURING_CHECKPOINT_STEP")
    if kill_step:
        original = alignkit.io.write_manifest

        def write_manifest_or_die(folder, extra=None):
            if extra and extra.get("step") == int(kill_step):
                os.kill(os.getpid(), signal.SIGKILL)
            return original(folder, extra)

        alignkit.io.write_manifest = write_manifest_or_die


def main() -> None:
    install_kill_switch()
    run_sft(load_config(SFTConfig, None, sys.argv[1:]))


if __name__ == "__main__":
    main()
