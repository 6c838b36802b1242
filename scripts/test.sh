#!/usr/bin/env bash
# Runs the test suite: unit tests and the integration tier on the embedded model (GPU tests skip
# without CUDA). Lint and type checks run first so a style regression fails fast.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check src tests benchmarks examples || exit 1
.venv/bin/mypy || exit 1
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
