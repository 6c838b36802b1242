#!/usr/bin/env bash
# The classic failure, reproduced and fixed: "the fine-tuned model never stops".
#
# Trains the embedded model twice on the same support conversations:
#   raw   - raw-text (continuation) mode without EOS: "User: ...\nAssistant: ..." and nothing after
#           the reply, so the model is never shown where a turn ends. alignkit lint refuses this data.
#   chat  - the normal way: the model's chat template, end-of-turn token inside the loss mask.
# then probes both (hello: stop rates; regurgitation: spans copied from the training data) and
# writes one report with the two runs side by side.
#
# Both runs use LoRA with a high learning rate (1e-3, 40 steps of 8 = 8 epochs): enough to
# overwrite the embedded model's habit of ending its turn. FINETUNE=full also works for models
# that can be saved in full.
#
# Usage: examples/classic_failure/run.sh            (env knobs below; outputs in $OUT)
# Knobs: OUT, MODEL, STEPS, LR, BATCH, FINETUNE, PROBES, PROBE_ARGS (extra probe key=value),
#        ALIGNKIT (the command, default: alignkit next to this python, else on PATH).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-$HERE/runs}"
MODEL="${MODEL:-embedded}"
STEPS="${STEPS:-40}"
LR="${LR:-1e-3}"
BATCH="${BATCH:-8}"
FINETUNE="${FINETUNE:-lora}"
PROBES="${PROBES:-hello,regurgitation,repetition}"
# The conversations are under 50 tokens, so the default 50-token flag could never fire: count
# 20-token spans instead, and report them without gating (a support bot trained for 8 epochs on 40
# canned answers is expected to repeat them; the figure shows how much).
PROBE_ARGS="${PROBE_ARGS:-thresholds.regurgitation_min_span=20 thresholds.max_regurgitation_share=null}"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
ALIGNKIT="${ALIGNKIT:-alignkit}"
DATA="$OUT/support.jsonl"

mkdir -p "$OUT"
rm -rf "${OUT:?}/raw" "${OUT:?}/chat"  # a rerun trains from scratch
"$PYTHON" "$HERE/make_data.py" --out "$DATA"

echo "== (a) lint: raw text without EOS must be refused, the chat-template version accepted"
set +e
$ALIGNKIT lint "$DATA" --model "$MODEL" data.raw_text=true data.add_eos=false >"$OUT/lint_raw.txt" 2>&1
lint_raw=$?
$ALIGNKIT lint "$DATA" --model "$MODEL" >"$OUT/lint_chat.txt" 2>&1
lint_chat=$?
set -e
cat "$OUT/lint_raw.txt"
if [[ $lint_raw -ne 1 ]] || ! grep -q "end-of-turn" "$OUT/lint_raw.txt"; then
    echo "expected lint to exit 1 naming the missing end-of-turn token (exit $lint_raw)" >&2
    exit 1
fi
if [[ $lint_chat -ne 0 ]]; then
    cat "$OUT/lint_chat.txt" >&2
    echo "expected lint to accept the chat-template data (exit $lint_chat)" >&2
    exit 1
fi

train() {  # train NAME extra-overrides...
    local name="$1"
    shift
    echo "== training $name ($FINETUNE, $STEPS steps, lr $LR)"
    $ALIGNKIT sft "model=$MODEL" "data.train=$DATA" "out=$OUT/$name" "finetune=$FINETUNE" \
        "train.max_steps=$STEPS" "train.lr=$LR" "train.batch_size=$BATCH" train.schedule=constant \
        resume=none device=cpu "$@"
}

echo "== (b) raw text, no EOS (lint overridden: this is the mistake being reproduced)"
train raw data.raw_text=true data.add_eos=false allow_lint_failures=true
echo "== (c) the normal way: chat template, end-of-turn token trained"
train chat

probe() {  # probe NAME: exit 1 (a failed threshold) is a finding, not an error
    local name="$1" folder="$OUT/$1" spec adapter=()
    if [[ -d "$folder/adapter" ]]; then spec="$MODEL"; adapter=(--adapter "$folder/adapter"); else spec="$folder/model"; fi
    echo "== (d) probing $name"
    set +e
    # shellcheck disable=SC2086 # PROBE_ARGS is a list of key=value words
    $ALIGNKIT probe --model "$spec" "${adapter[@]}" --train-data "$DATA" --probes "$PROBES" \
        --out "$folder/probe" device=cpu $PROBE_ARGS
    local code=$?
    set -e
    if [[ $code -gt 1 ]]; then
        echo "probe $name failed to run (exit $code)" >&2
        exit "$code"
    fi
    echo "probe $name exit code: $code"
}
probe raw
probe chat

echo "== (e) report"
$ALIGNKIT report "$OUT/raw" "$OUT/chat" --labels "raw-text-no-eos,chat-template" --out "$OUT/report.html"
