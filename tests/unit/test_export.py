"""``alignkit export``: GGUF files that load back with transformers (and llama.cpp when installed) and
compute what the merged model computes, their metadata, the Modelfile, and refusals of bad inputs.

The reference for a file's logits is the merged model with its matrices rounded as the file stores
them (tests/helpers/gguf_reference.py): the GGUF must match it to float noise (1e-4 here), which checks
names, the Q/K permutation, the tied head and every hyper-parameter. Against the unrounded merged
model the tolerances are the rounding's own cost (f16: unit roundoff 2^-11 per weight; Q8_0: up to
absmax/254 per block of 32, about 8x coarser), stated where asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from alignkit.cli import app
from alignkit.errors import ModelError
from alignkit.models.adapters import merge_adapters, peft_wrapping
from alignkit.models.export import _rope_pairs_interleaved
from alignkit.models.loader import load_model
from alignkit.models.modelfile import go_template, modelfile_text, role_wrapping
from tests.helpers import llama_cpp_runtime
from tests.helpers.gguf_reference import greedy, logits, rounded_copy

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).parents[2]
IM_END = 2
PROMPTS = ["Hello!", "What is 12 + 30?", "Name three colours, please."]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory) -> Path:
    """A LoRA on tiny-random with random A and B (a non-zero delta), on every projection."""
    from peft import LoraConfig, get_peft_model

    base = load_model("tiny-random", device="cpu", seed=0).model
    torch.manual_seed(1)
    config = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, task_type="CAUSAL_LM",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    folder = tmp_path_factory.mktemp("adapter")
    with peft_wrapping():
        get_peft_model(base, config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def merged(adapter_dir):
    loaded = load_model("tiny-random", device="cpu", seed=0)
    return merge_adapters(loaded.model, [str(adapter_dir)]).eval(), loaded.tokenizer


@pytest.fixture(scope="module")
def exported(tmp_path_factory, adapter_dir) -> dict[str, Path]:
    """tiny-random + the adapter, exported through the CLI as f16 and q8_0."""
    folder = tmp_path_factory.mktemp("gguf")
    paths = {}
    for quant in ("f16", "q8_0"):
        out = folder / f"tiny-{quant}.gguf"
        result = invoke("export", "--model", "tiny-random", "--adapter", str(adapter_dir), "--quant", quant,
                        "--out", str(out))
        assert result.exit_code == 0, result.output
        paths[quant] = out
    return paths


def chat_ids(tokenizer, prompt: str) -> list[int]:
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False).input_ids)


def load_gguf(path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    return model.eval(), AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def test_rope_rows_are_interleaved_per_head():
    # Hand-derived: one head of 4 rows [r0 r1 r2 r3]; transformers pairs (r0, r2) and (r1, r3), llama.cpp
    # wants the pairs adjacent: [r0 r2 r1 r3]. Two heads permute within each head only.
    rows = np.arange(8, dtype=np.float32).reshape(8, 1)
    assert _rope_pairs_interleaved(rows, 1).ravel().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    assert _rope_pairs_interleaved(rows, 2).ravel().tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_f16_round_trip_matches_the_merged_model(exported, merged):
    model, tokenizer = merged
    gguf_model, gguf_tokenizer = load_gguf(exported["f16"])
    reference = rounded_copy(model, "f16")
    for prompt in PROMPTS:
        ids = chat_ids(tokenizer, prompt)
        assert chat_ids(gguf_tokenizer, prompt) == ids
        from_file = logits(gguf_model, ids)
        assert (from_file - logits(reference, ids)).abs().max() < 1e-4
        # f16 rounding alone: measured 3e-4 of a logit scale of ~1 here; bound 0.5% of the scale.
        exact = logits(model, ids)
        assert (from_file - exact).abs().max() <= 5e-3 * exact.abs().max()
        assert greedy(gguf_model, ids, 24, [IM_END]) == greedy(model, ids, 24, [IM_END])


def test_q8_0_round_trip_is_the_q8_0_rounded_model(exported, merged):
    model, tokenizer = merged
    gguf_model, _ = load_gguf(exported["q8_0"])
    reference = rounded_copy(model, "q8_0")
    for prompt in PROMPTS:
        ids = chat_ids(tokenizer, prompt)
        from_file = logits(gguf_model, ids)
        assert (from_file - logits(reference, ids)).abs().max() < 1e-4
        # Q8_0 moves each weight by up to absmax/254 of its block; bound 5% of the logit scale (measured
        # 3.5% on the embedded model, 0.6% here), and the argmax of most positions survives.
        exact = logits(model, ids)
        assert (from_file - exact).abs().max() <= 5e-2 * exact.abs().max()
        assert (from_file.argmax(-1) == exact.argmax(-1)).float().mean() >= 0.9
    assert exported["q8_0"].stat().st_size < 0.7 * exported["f16"].stat().st_size


def test_metadata_stop_set_template_and_vocabulary(exported, tokenizer):
    from gguf import GGUFReader

    reader = GGUFReader(exported["f16"])

    def field(key: str):
        return reader.fields[key].contents()

    assert field("general.architecture") == "llama"
    assert field("tokenizer.ggml.model") == "gpt2" and field("tokenizer.ggml.pre") == "gpt-2"
    assert field("tokenizer.chat_template") == tokenizer.chat_template
    # <|im_end|> ends the assistant turn in the template and is the tokenizer's EOS: both slots hold it.
    assert field("tokenizer.ggml.eos_token_id") == IM_END
    assert field("tokenizer.ggml.eot_token_id") == IM_END
    assert field("alignkit.stop_token_ids") == [IM_END]
    assert field("tokenizer.ggml.bos_token_id") == tokenizer.bos_token_id
    assert field("tokenizer.ggml.add_bos_token") is False  # the template writes <|im_start|> itself
    tokens, types = field("tokenizer.ggml.tokens"), field("tokenizer.ggml.token_type")
    assert len(tokens) == len(types) == 49152
    assert tokens[IM_END] == "<|im_end|>" and types[IM_END] == 3  # CONTROL
    assert tokens[1000] == tokenizer.convert_ids_to_tokens(1000) and types[1000] == 1  # NORMAL
    names = {t.name for t in reader.tensors}
    assert "output.weight" not in names and "token_embd.weight" in names  # tied head written once
    q_proj = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight")
    assert q_proj.tensor_type.name == "F16"
    norm = next(t for t in reader.tensors if t.name == "blk.0.attn_norm.weight")
    assert norm.tensor_type.name == "F32"
    q8 = GGUFReader(exported["q8_0"])
    assert next(t for t in q8.tensors if t.name == "blk.0.attn_q.weight").tensor_type.name == "Q8_0"


def test_modelfile_next_to_the_gguf(exported):
    text = exported["f16"].with_name("tiny-f16.Modelfile").read_text()
    assert text.startswith("FROM ./tiny-f16.gguf\n")
    assert 'PARAMETER stop "<|im_end|>"' in text
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM, trained by Hugging Face"""' in text
    assert "PARAMETER temperature 0.7" in text and "PARAMETER top_p 0.9" in text


def test_chatml_wrapping_and_go_template(tokenizer):
    wrapping = role_wrapping(tokenizer)
    assert wrapping.head == "" and wrapping.generation_prompt == "<|im_start|>assistant\n"
    assert wrapping.user == ("<|im_start|>user\n", "<|im_end|>\n")
    assert wrapping.default_system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    conversation = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y\n\nz"},
                    {"role": "user", "content": "w"}]
    assert wrapping.render(conversation, add_generation_prompt=True) == tokenizer.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=True)
    assert go_template(wrapping) == (
        '{{ range .Messages }}{{ if eq .Role "system" }}<|im_start|>system\n{{ .Content }}<|im_end|>\n'
        '{{ else if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n'
        '{{ else if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n'
        "{{ end }}{{ end }}<|im_start|>assistant\n")


def test_a_constant_head_is_not_a_default_system(tokenizer):
    template = ("{{ '<|head|>' }}{% for m in messages %}{{ '<|h|>' + m['role'] + '<|/h|>' + m['content'] + "
                "'<|e|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|h|>assistant<|/h|>' }}{% endif %}")
    wrapping = role_wrapping(tokenizer, template)
    assert wrapping.head == "<|head|>" and wrapping.default_system is None
    assert wrapping.system == ("<|h|>system<|/h|>", "<|e|>")
    assert modelfile_text("m.gguf", wrapping, ["<|e|>"], {}).count("SYSTEM") == 0


def test_a_template_that_rewrites_content_is_refused(tokenizer):
    template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] | upper }}\n{% endfor %}"
                "{% if add_generation_prompt %}assistant: {% endif %}")
    with pytest.raises(ModelError, match="cannot be written as an Ollama TEMPLATE"):
        role_wrapping(tokenizer, template)


def test_existing_output_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "m.gguf"
    out.write_text("keep")
    refused = invoke("export", "--model", "tiny-random", "--out", str(out))
    assert refused.exit_code == 2
    assert "already exists; pass --overwrite" in refused.output
    assert out.read_text() == "keep"
    replaced = invoke("export", "--model", "tiny-random", "--out", str(out), "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert out.read_bytes()[:4] == b"GGUF"


def test_adapter_for_another_base_is_refused(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from alignkit.models.loader import tiny_random_config

    config = tiny_random_config()
    config.hidden_size, config.intermediate_size = 32, 64
    with peft_wrapping():
        other = get_peft_model(AutoModelForCausalLM.from_config(config),
                               LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    other.save_pretrained(tmp_path / "other")
    out = tmp_path / "m.gguf"
    result = invoke("export", "--model", "tiny-random", "--adapter", str(tmp_path / "other"), "--out", str(out))
    assert result.exit_code == 2
    assert "was trained on another base model (size mismatch" in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    others = [line for line in result.stderr.splitlines() if not line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert all(line.startswith(("loading model ", "loaded model ")) for line in others), "besides it, only progress"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other"]


def test_unsupported_architecture_is_refused(tmp_path, tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(vocab_size=49152, n_embd=32, n_layer=1, n_head=2)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    result = invoke("export", "--model", str(folder), "--out", str(tmp_path / "m.gguf"))
    assert result.exit_code == 2
    assert "cannot export architecture 'gpt2' to GGUF (supported: llama, mistral, qwen2)" in result.output
    assert not (tmp_path / "m.gguf").exists() and not (tmp_path / "m.Modelfile").exists()


def test_a_failed_write_leaves_no_file(tmp_path):
    """A real write failure: the file-size limit (RLIMIT_FSIZE, 4 MB) stops the 8 MB file mid-tensors."""
    out = tmp_path / "m.gguf"
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"  # the write then fails with EFBIG instead of killing us
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4_000_000, 4_000_000))\n"
        "from alignkit.cli import main\n"
        f"sys.argv = ['alignkit', 'export', '--model', 'tiny-random', '--out', {str(out)!r}]\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    # numpy reports the short write itself ("N requested and M written") rather than EFBIG.
    assert len(lines) == 1 and lines[0].startswith(f"error: {out}: out: could not write the file (")
    assert lines[0].endswith("); nothing was left under this name")
    assert list(tmp_path.iterdir()) == []


def test_qwen2_with_biases_round_trips(tmp_path, tokenizer):
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2, max_position_embeddings=512)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0, 0.5)  # qwen2's q/k/v biases start at zero; make them count
    model.save_pretrained(tmp_path / "qwen2")
    tokenizer.save_pretrained(tmp_path / "qwen2")
    out = tmp_path / "q.gguf"
    result = invoke("export", "--model", str(tmp_path / "qwen2"), "--out", str(out))
    assert result.exit_code == 0, result.output
    gguf_model, _ = load_gguf(out)
    assert not gguf_model.config.tie_word_embeddings
    ids = chat_ids(tokenizer, PROMPTS[0])
    assert (logits(gguf_model, ids) - logits(rounded_copy(model.eval(), "f16"), ids)).abs().max() < 1e-4


def test_pipeline_stage_writes_the_gguf(tmp_path):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(yaml.safe_dump({"name": "p", "runs_dir": str(tmp_path / "runs"), "stages": [
        {"name": "export", "config": {"model": "tiny-random", "quant": "q8_0"}}]}))
    result = invoke("run", str(pipeline))
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "runs" / "p" / "export" / "stage.json").read_text())
    assert record["status"] == "complete"
    assert Path(record["outputs"]["output"]).name == "model-q8_0.gguf"
    assert Path(record["outputs"]["output"]).read_bytes()[:4] == b"GGUF"
    assert Path(record["outputs"]["modelfile"]).is_file()


@pytest.mark.skipif(llama_cpp_runtime.unavailable_reason() is not None,
                    reason=str(llama_cpp_runtime.unavailable_reason()))
def test_llama_cpp_runs_the_file_like_transformers(exported, merged):
    model, tokenizer = merged
    reference = rounded_copy(model, "f16")
    runtime = llama_cpp_runtime.LlamaCpp(exported["f16"])
    try:
        assert runtime.is_end_of_generation(IM_END)
        for prompt in PROMPTS:
            ids = chat_ids(tokenizer, prompt)
            text = tokenizer.decode(ids)
            assert runtime.tokenize(text) == ids
            expected = logits(reference, ids)[-1].numpy()
            # llama.cpp multiplies f16 weights with f16-rounded activations: bound 1% of the logit scale.
            assert np.abs(runtime.last_logits(ids) - expected).max() <= 1e-2 * np.abs(expected).max()
            assert runtime.greedy(ids, 24) == greedy(model, ids, 24, [IM_END])
    finally:
        runtime.close()


def test_the_trained_end_of_turn_token_is_in_the_stop_set(tmp_path, tokenizer):
    """Trained with a template whose turns end in <|endoftext|> (id 0), not the tokenizer's EOS (id 2):
    the file must stop on both, or llama.cpp/Ollama run past the end of every reply."""
    from gguf import GGUFReader

    template = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|endoftext|>\\n' }}"
                "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
    out = tmp_path / "m.gguf"
    result = invoke("export", "--model", "tiny-random", "--out", str(out), f"chat_template={json.dumps(template)}")
    assert result.exit_code == 0, result.output
    fields = GGUFReader(out).fields
    assert fields["tokenizer.chat_template"].contents() == template
    assert fields["tokenizer.ggml.eos_token_id"].contents() == IM_END
    assert fields["tokenizer.ggml.eot_token_id"].contents() == 0
    assert fields["alignkit.stop_token_ids"].contents() == [0, IM_END]
    modelfile = out.with_name("m.Modelfile").read_text()
    assert 'PARAMETER stop "<|endoftext|>"' in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "{{ .Content }}<|endoftext|>\n" in modelfile


def test_safetensors_format_is_the_merged_folder(tmp_path, adapter_dir, merged):
    out = tmp_path / "merged"
    result = invoke("export", "--model", "tiny-random", "--adapter", str(adapter_dir), "--format", "safetensors",
                    "--out", str(out))
    assert result.exit_code == 0, result.output
    reloaded = load_model(str(out), device="cpu")
    model, tokenizer = merged
    ids = chat_ids(tokenizer, PROMPTS[0])
    assert torch.equal(logits(reloaded.model, ids), logits(model, ids))


SAMPLE_TEXT = "Order 12345 costs $3.50, isn't it?  Yes!!\n\n  Indented\tTAB  ünïcödé 你好 2026-12-04"


def pre_tokenizer(name: str):
    from tokenizers import Regex, pre_tokenizers
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=name in ("gpt-2", "smollm"))
    if name == "gpt-2":
        return byte_level
    if name == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    split = pre_tokenizers.Split(Regex(GGUF_PRE_TOKENIZER_SPLITS[name]), behavior="isolated")
    return pre_tokenizers.Sequence([split, byte_level])


@pytest.mark.skipif(llama_cpp_runtime.unavailable_reason() is not None,
                    reason=str(llama_cpp_runtime.unavailable_reason()))
@pytest.mark.parametrize("name", ["gpt-2", "smollm", "qwen2", "llama3"])
def test_llama_cpp_splits_text_like_the_training_tokenizer(tmp_path, name):
    """The pre-tokenizer name written is one llama.cpp knows and splits digits, spaces and unicode by."""
    from gguf import GGUFReader

    from alignkit.models.export import write_gguf

    loaded = load_model("tiny-random", device="cpu")
    loaded.tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizer(name)
    out = tmp_path / "m.gguf"
    write_gguf(loaded, out, modelfile=False)
    assert GGUFReader(out).fields["tokenizer.ggml.pre"].contents() == name
    runtime = llama_cpp_runtime.LlamaCpp(out)
    try:
        assert runtime.tokenize(SAMPLE_TEXT) == loaded.tokenizer(SAMPLE_TEXT, add_special_tokens=False).input_ids
    finally:
        runtime.close()


def test_an_unknown_pre_tokenizer_is_refused(tmp_path):
    from tokenizers import pre_tokenizers

    from alignkit.models.export import write_gguf

    loaded = load_model("tiny-random", device="cpu")
    loaded.tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.ByteLevel(use_regex=False)])
    with pytest.raises(ModelError, match=r"pre-tokenizer \(WhitespaceSplit \+ ByteLevel\) has no llama.cpp name"):
        write_gguf(loaded, tmp_path / "m.gguf", modelfile=False)
    assert list(tmp_path.iterdir()) == []


def test_an_inexpressible_template_fails_before_writing_unless_modelfile_is_off(tmp_path):
    template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] | upper }}\n{% endfor %}"
                "{% if add_generation_prompt %}assistant: {% endif %}")
    out = tmp_path / "m.gguf"
    refused = invoke("export", "--model", "tiny-random", "--out", str(out), f"chat_template={json.dumps(template)}")
    assert refused.exit_code == 2
    assert "set modelfile=false to export the GGUF alone" in refused.output
    assert list(tmp_path.iterdir()) == []
    alone = invoke("export", "--model", "tiny-random", "--out", str(out), f"chat_template={json.dumps(template)}",
                   "modelfile=false")
    assert alone.exit_code == 0, alone.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf"]
