"""``alignkit export``: the merged model as one GGUF file (f16 or q8_0) plus an Ollama Modelfile.

The file follows the layout llama.cpp's own converter gives a llama-family model: tensor names from
``gguf``'s name map, a byte-level BPE vocabulary (``tokenizer.ggml.model = gpt2``) with its merges and
the name of the pre-tokenizer that splits text the way the training tokenizer does, token types
(special added tokens are CONTROL), the chat template used in training, and the stop set (tokenizer
EOS, generation-config EOS and the template's end-of-turn token) as ``eos``/``eot`` ids. Whatever it
cannot express faithfully (another architecture, rope scaling, a sliding window, a tokenizer type, a
pre-tokenizer it does not know) is a one-line error, never a file that loads and behaves differently.

Departures from llama.cpp's converter, on purpose: only what alignkit trains (llama, mistral, qwen2)
and byte-level BPE vocabularies; the pre-tokenizer is recognised from the tokenizer's own structure
instead of from a hash of its output on a test text; stop tokens past ``eos``/``eot`` are listed under
``alignkit.stop_token_ids`` (llama.cpp has no key for a stop set; the Modelfile lists them all).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from alignkit.data.dataset import resolve_chat_template
from alignkit.data.formatting import stop_token_ids, template_info
from alignkit.errors import AlignkitError, ModelError
from alignkit.io import atomic_folder
from alignkit.models.adapters import merge_adapters, save_trained_model
from alignkit.models.loader import load_from_fields
from alignkit.models.modelfile import modelfile_text, role_wrapping
from alignkit.result import CommandResult, say

if TYPE_CHECKING:
    import gguf

    from alignkit.config.export import ExportConfig
    from alignkit.models.loader import LoadedModel

log = logging.getLogger(__name__)

# transformers model_type -> llama.cpp architecture. Mistral without a sliding window is llama.
ARCHITECTURES = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2"}
# A Q8_0 block holds 32 weights of one row with one f16 scale.
_Q8_0_BLOCK = 32
STOP_IDS_KEY = "alignkit.stop_token_ids"


@dataclass
class ExportResult:
    path: Path
    modelfile: Path | None
    seconds: float
    stop_token_ids: list[int]


def check_architecture(config: Any) -> str:
    """The llama.cpp architecture name for a transformers config, or a one-line error."""
    model_type = getattr(config, "model_type", None)
    if model_type not in ARCHITECTURES:
        raise ModelError(f"cannot export architecture {model_type!r} to GGUF (supported: "
                         f"{', '.join(sorted(ARCHITECTURES))})", field="model")
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise ModelError(f"rope scaling {rope.get('rope_type')!r} is not written by this exporter", field="model")
    if model_type != "qwen2" and (getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False)):
        raise ModelError("a llama model with attention or MLP biases has no llama.cpp layout", field="model")
    window = getattr(config, "sliding_window", None)
    if window and (model_type == "mistral" or getattr(config, "use_sliding_window", False)) \
            and window < config.max_position_embeddings:
        raise ModelError(f"sliding-window attention ({window} tokens) is not written by this exporter", field="model")
    return ARCHITECTURES[model_type]


def _rope_pairs_interleaved(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Q/K rows from transformers' rotate-half order to the interleaved pairs llama.cpp's llama rope uses.

    Within each head transformers rotates row ``i`` with row ``i + d/2``; llama.cpp rotates rows
    ``2i`` and ``2i+1``. (n_head*d, in) -> (n_head, 2, d/2, in) -> swap -> (n_head, d/2, 2, in).
    """
    return weight.reshape(n_head, 2, -1, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _encode(weight: np.ndarray, quant: str) -> tuple[np.ndarray, gguf.GGMLQuantizationType | None]:
    """Norms and biases stay f32 (tiny, and llama.cpp adds them in f32); matrices become f16 or Q8_0."""
    import gguf

    if weight.ndim == 1:
        return weight.astype(np.float32), None
    if quant == "q8_0" and weight.shape[-1] % _Q8_0_BLOCK == 0:
        return gguf.quants.quantize(weight, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0
    return weight.astype(np.float16), None


def gguf_tensors(model: Any, arch_name: str, quant: str) -> Iterator[tuple[str, np.ndarray, Any]]:
    """(GGUF name, data, raw type) for every weight; a tied output head is written once."""
    import gguf

    config = model.config
    arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == arch_name)
    name_map = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is model.get_input_embeddings().weight
    n_kv_head = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue
        gguf_name = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ModelError(f"tensor {hf_name} has no GGUF name for {arch_name}", field="model")
        weight = tensor.detach().to(device="cpu", dtype=torch.float32).numpy()
        if arch_name == "llama" and hf_name.endswith("self_attn.q_proj.weight"):
            weight = _rope_pairs_interleaved(weight, config.num_attention_heads)
        elif arch_name == "llama" and hf_name.endswith("self_attn.k_proj.weight"):
            weight = _rope_pairs_interleaved(weight, n_kv_head)
        yield (gguf_name, *_encode(weight, quant))


def _pre_tokenizer_name(backend: dict[str, Any]) -> str:
    """llama.cpp's name for the way the tokenizer splits text before BPE, read from tokenizer.json."""
    pre = backend.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"  # GPT-2's split regex (llama.cpp spells this pre-tokenizer with a hyphen)
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"  # each digit alone, then GPT-2's regex
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        pattern = (steps[0].get("pattern") or {}).get("Regex")
        with contextlib.suppress(ImportError):
            from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

            # transformers reads these names back to the same regex, so the round trip is exact.
            for name, regex in GGUF_PRE_TOKENIZER_SPLITS.items():
                if regex == pattern:
                    return name
    raise ModelError(f"the tokenizer's pre-tokenizer ({' + '.join(map(str, kinds))}) has no llama.cpp name "
                     "known to this exporter", field="model")


def add_vocabulary(writer: gguf.GGUFWriter, tokenizer: Any, n_vocab: int) -> None:
    """Tokens (byte-level spelling), token types, merges and the pre-tokenizer name."""
    import gguf

    backend_tokenizer = getattr(tokenizer, "backend_tokenizer", None)
    if backend_tokenizer is None:
        raise ModelError("only fast (tokenizers) byte-level BPE tokenizers can be exported", field="model")
    backend = json.loads(backend_tokenizer.to_str())
    bpe = backend.get("model") or {}
    if bpe.get("type") != "BPE" or bpe.get("byte_fallback") or (backend.get("decoder") or {}).get("type") != "ByteLevel":
        raise ModelError(f"tokenizer type {bpe.get('type')!r} without byte-level decoding: only byte-level BPE "
                         "(the GPT-2 family) is exported", field="model")
    if (backend.get("normalizer") or {}).get("type") not in (None, "NFC"):
        raise ModelError(f"the tokenizer's normalizer {backend['normalizer']['type']!r} has no GGUF equivalent",
                         field="model")
    pre = _pre_tokenizer_name(backend)
    if len(tokenizer) > n_vocab:
        raise ModelError(f"the tokenizer has {len(tokenizer)} tokens but the model's embedding only {n_vocab}",
                         field="model")
    added = tokenizer.added_tokens_decoder
    tokens: list[str] = []
    types: list[int] = []
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    for index in range(n_vocab):
        if index not in by_id:  # embedding rows past the tokenizer (padding to a multiple)
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif index in added:
            tokens.append(added[index].content)
            types.append(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.NORMAL)
    merges = [pair if isinstance(pair, str) else " ".join(pair) for pair in bpe.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)


def _add_special_tokens(writer: gguf.GGUFWriter, tokenizer: Any, stop_ids: list[int], eot_id: int | None,
                        adds_bos: bool) -> None:
    eos_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else stop_ids[0]
    writer.add_eos_token_id(eos_id)
    if eot_id is not None:
        writer.add_eot_token_id(eot_id)
    for setter, value in ((writer.add_bos_token_id, tokenizer.bos_token_id),
                          (writer.add_unk_token_id, tokenizer.unk_token_id),
                          (writer.add_pad_token_id, tokenizer.pad_token_id)):
        if value is not None:
            setter(value)
    writer.add_add_bos_token(adds_bos)
    writer.add_add_eos_token(False)
    writer.add_array(STOP_IDS_KEY, stop_ids)


def _add_hyperparameters(writer: gguf.GGUFWriter, config: Any, quant: str) -> None:
    import gguf

    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // config.num_attention_heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_vocab_size(config.vocab_size)
    file_type = gguf.LlamaFileType.MOSTLY_Q8_0 if quant == "q8_0" else gguf.LlamaFileType.MOSTLY_F16
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_output(out: Path) -> Iterator[Path]:
    """A temporary file beside ``out``, renamed onto it only when the block succeeds; removed otherwise.

    A failed write (disk full, interrupted) leaves nothing under the final name, and an existing file
    there (``overwrite``) untouched.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AlignkitError(f"could not write the file ({exc.strerror or exc}); nothing was left under this name",
                            source=str(out), field="out") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def modelfile_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.Modelfile")


def check_outputs(cfg: ExportConfig) -> list[Path]:
    """The paths the export will write; an existing one is refused unless ``overwrite``."""
    if not cfg.out:
        raise AlignkitError("expected an output path: --out FILE.gguf (or a folder for safetensors)", field="out")
    out = Path(cfg.out)
    if cfg.format == "gguf" and out.suffix != ".gguf":
        raise AlignkitError(f"expected a .gguf file name, got {out.name!r}", field="out")
    paths = [out] + ([modelfile_path(out)] if cfg.format == "gguf" and cfg.modelfile else [])
    for path in paths:
        if path.exists() and not cfg.overwrite:
            raise AlignkitError("already exists; pass --overwrite to replace it", source=str(path), field="out")
    return paths


def merged_model(cfg: ExportConfig) -> LoadedModel:
    """The base with ``adapter`` and ``adapters`` merged in: the same load and merge as ``alignkit merge``."""

    adapters = [*([cfg.adapter] if cfg.adapter else []), *cfg.adapters]
    loaded = load_from_fields(cfg, spec=cfg.model, device="cpu")
    if adapters:
        loaded.model = merge_adapters(loaded.model, adapters, weights=cfg.weights or None,
                                      combination=cfg.combination)
    loaded.model.eval()
    return loaded


def write_gguf(loaded: LoadedModel, out: Path, *, quant: str = "f16", name: str | None = None,
               chat_template: str | None = None, sampling: Any = None, modelfile: bool = True) -> ExportResult:
    """Writes ``out`` (and ``<stem>.Modelfile``) from a loaded, merged model; see the module docstring."""
    import gguf


    started = time.perf_counter()
    model, tokenizer = loaded.model, loaded.tokenizer
    arch_name = check_architecture(model.config)
    template = chat_template or getattr(tokenizer, "chat_template", None)
    info = template_info(tokenizer, chat_template)
    stop_ids = stop_token_ids(tokenizer, model.generation_config, chat_template)
    if not stop_ids:
        raise ModelError("the model has no EOS or end-of-turn token: a GGUF of it would never stop", field="model")
    parameters: dict[str, float | int] = {}
    if sampling is not None:
        parameters = {"temperature": sampling.temperature, "top_p": sampling.top_p}
        if sampling.top_k:
            parameters["top_k"] = sampling.top_k
        if sampling.repetition_penalty != 1.0:
            parameters["repeat_penalty"] = sampling.repetition_penalty
    # The Modelfile is worked out first: a template Ollama cannot express fails before minutes of writing.
    modelfile_body = None
    if modelfile:
        stop_strings = [tokenizer.convert_ids_to_tokens(i) for i in stop_ids]
        modelfile_body = modelfile_text(out.name, role_wrapping(tokenizer, chat_template), stop_strings, parameters)
    with atomic_output(out) as tmp:
        writer = gguf.GGUFWriter(tmp, arch_name)
        writer.add_type(gguf.GGUFType.MODEL)
        writer.add_name(name or out.stem)
        _add_hyperparameters(writer, model.config, quant)
        add_vocabulary(writer, tokenizer, model.config.vocab_size)
        _add_special_tokens(writer, tokenizer, stop_ids, info.eot_id, info.adds_bos)
        if template:
            writer.add_chat_template(template)
        if sampling is not None:
            writer.add_sampling_temp(sampling.temperature)
            writer.add_sampling_top_p(sampling.top_p)
            writer.add_sampling_top_k(sampling.top_k)
        with torch.no_grad():
            for tensor_name, data, raw_dtype in gguf_tensors(model, arch_name, quant):
                writer.add_tensor(tensor_name, data, raw_dtype=raw_dtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    written_modelfile = None
    if modelfile_body is not None:
        written_modelfile = modelfile_path(out)
        with atomic_output(written_modelfile) as tmp:
            tmp.write_text(modelfile_body, encoding="utf-8")
    return ExportResult(path=out, modelfile=written_modelfile, seconds=time.perf_counter() - started,
                        stop_token_ids=stop_ids)


def run_export(cfg: ExportConfig) -> ExportResult:
    """``alignkit export``: merge, then write a GGUF (+ Modelfile) or a safetensors folder."""

    started = time.perf_counter()
    check_outputs(cfg)
    out = Path(str(cfg.out))
    loaded = merged_model(cfg)
    if cfg.format == "safetensors":

        with atomic_folder(out, {"kind": "merged", "base": cfg.model, "adapters": cfg.adapters}) as tmp:
            save_trained_model(loaded.model, loaded.tokenizer, tmp)
        return ExportResult(path=out, modelfile=None, seconds=time.perf_counter() - started, stop_token_ids=[])
    result = write_gguf(loaded, out, quant=cfg.quant, name=cfg.name, chat_template=resolve_chat_template(cfg.chat_template),
                        sampling=cfg.sampling, modelfile=cfg.modelfile)
    result.seconds = time.perf_counter() - started
    return result


def export_command(cfg: ExportConfig, progress: Callable[[str], None]) -> CommandResult:
    """The ``export`` command of the registry: ``run_export`` and a line saying what was written."""
    result = run_export(cfg)
    files = [result.path] if result.path.is_file() else [p for p in result.path.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    extra = f" and {result.modelfile}" if result.modelfile else ""
    return CommandResult(output=str(result.path),
                         outputs={"modelfile": str(result.modelfile) if result.modelfile else None},
                         show=say(f"wrote {result.path}{extra} ({size / 1e6:.1f} MB) in {result.seconds:.1f} s"))
