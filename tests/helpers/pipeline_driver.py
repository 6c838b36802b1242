"""Runs ``alignkit run`` in its own process; ``KILL_DURING_CHECKPOINT_STEP=k`` SIGKILLs it while the
step-k checkpoint is being written (see sft_driver)."""

from __future__ import annotations

import sys

from alignkit.cli import app
from tests.helpers.sft_driver import install_kill_switch


def main() -> None:
    install_kill_switch()
    sys.argv = ["alignkit", "run", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
