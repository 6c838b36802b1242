"""LoRA SFT steps on the embedded model, alone and beside busy processes, under each thread setting.

Each measurement is a real ``alignkit sft`` run (LoRA r16, batch 8 of the quickstart's records, a few
steps) in a fresh process; the figure is the median ``step_time_s`` of its metrics.jsonl after the first
step. "Busy" starts ``--busy`` processes that spin on one core each for the whole run (another training
job, a compile, a browser). Settings, applied through the environment of the run:

- ``torch default``: what torch does with no setting (one thread per core, spinning OpenMP waits);
- ``alignkit default``: what ``alignkit`` sets when the user sets nothing (see ``cli.thread_defaults``);
- ``1 thread``: ``OMP_NUM_THREADS=1``.

Run on a quiet machine:  .venv/bin/python benchmarks/threads.py [--steps 6] [--busy 1] [--json-out F]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALIGNKIT = Path(sys.executable).parent / "alignkit"
DATA = ROOT / "examples" / "quickstart" / "data" / "sft_train.jsonl"
# Variables a user's shell may already hold would decide the "default" rows: the runs start without them.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "ALIGNKIT_NO_THREAD_DEFAULTS")
SETTINGS = {
    "torch default": {"ALIGNKIT_NO_THREAD_DEFAULTS": "1"},
    "alignkit default": {},
    "1 thread": {"OMP_NUM_THREADS": "1"},
}


def _spin() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def one_run(env_extra: dict[str, str], steps: int) -> float:
    """Median step time (s) of one ``alignkit sft`` run, its first step left out (warm-up)."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES} | env_extra
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [str(ALIGNKIT), "sft", "finetune=lora", "lora.r=16", "lora.alpha=32", f"data.train={DATA}",
                   "data.max_length=512", f"train.max_steps={steps}", "train.batch_size=8", "train.eval_every=0",
                   f"train.save_every={steps}", "train.log_every=1", f"out={out}"]
        subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=3600)
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        times = [r["step_time_s"] for r in records if r.get("kind") == "train"][1:]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--busy", type=int, default=1, help="spinning processes beside the run")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    rows = []
    for name, env in SETTINGS.items():
        alone = one_run(env, args.steps)
        spinners = [_spin() for _ in range(args.busy)]
        time.sleep(1.0)
        try:
            busy = one_run(env, args.steps)
        finally:
            for process in spinners:
                process.kill()
                process.wait()
        rows.append({"setting": name, "alone_s": alone, "busy_s": busy, "slowdown": busy / alone})
        print(f"{name:18s} alone {alone:6.2f} s/step   beside {args.busy} busy {busy:6.2f} s/step   "
              f"slowdown {busy / alone:5.2f}x", flush=True)
    base = rows[0]
    for row in rows[1:]:
        print(f"{row['setting']} vs torch default: alone {base['alone_s'] / row['alone_s']:.2f}x, "
              f"busy {base['busy_s'] / row['busy_s']:.2f}x faster")
    if args.json_out:
        args.json_out.write_text(json.dumps({"cpus": os.cpu_count(), "steps": args.steps, "busy": args.busy,
                                             "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
