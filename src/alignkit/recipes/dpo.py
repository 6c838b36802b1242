"""Direct preference optimisation and relatives (IPO, cDPO, SimPO, ORPO), read top to bottom.

1. Load the policy: LoRA by default, or full; ``adapter=DIR`` starts from an SFT adapter (trainable).
2. Pick the reference the loss compares against (``reference=``):
   - ``copy``: a frozen copy of the starting model (default for full fine-tuning);
   - ``adapter_disabled``: the policy itself with its LoRA adapter switched off through PEFT's
     ``disable_adapter()``; no second copy in memory (default for LoRA from the base model);
   - ``precomputed``: reference log-probs computed once before training and cached in
     ``<out>/reference_logps.safetensors`` with the data and model fingerprints; a cache whose
     fingerprints differ is refused, a matching one is reused on resume (default with ``adapter=``:
     the reference must be the SFT model, and disabling the adapter would give the base model);
   - none for SimPO and ORPO, which are reference-free.
3. Load preference pairs with the model's chat template; refuse data lint blocks.
4. Train with the shared loop. A micro-batch of B pairs is packed into ONE padding-free row
   ``[chosen_1..chosen_B, rejected_1..rejected_B]``; one forward gives every completion's summed
   log-prob (``sequence_logps``), and the reference, when computed on the fly, runs the same row.
   The loss is summed over pairs and divided by the pairs of the global batch (the loop does that).
5. Save the adapter (PEFT folder) or the full model, with the config and a run manifest.

Where this departs from the papers or from TRL 1.16:
- IPO uses length-averaged log-probs (as TRL and the IPO paper's experiments), see ``ipo_loss``.
- cDPO applies label smoothing to the sigmoid loss (TRL 1.16 ignores it for ``loss_type="sigmoid"``).
- SimPO is the paper's loss, without the CPO NLL term TRL's ``CPOTrainer`` adds by default.
- ORPO's NLL term is per pair (mean NLL per token of that chosen reply), then averaged over pairs;
  TRL takes one token mean over all chosen tokens of the batch. Equal when chosen lengths are equal.
- Precomputed reference log-probs come from micro-batches in dataset order, so they can differ from
  an on-the-fly reference in the last float bits (attention runs over a differently packed row).
- SimPO/ORPO "rewards" in the metrics are β times the average log-prob per token (no reference).

The learning rate defaults to the shared ``train.lr`` (2e-5), reasonable for LoRA; full-model DPO
usually wants 5e-7 to 1e-6 (``train.lr=1e-6``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from alignkit.config.base import config_hash, config_to_yaml
from alignkit.config.recipes import DPOConfig
from alignkit.data.collate import Batch, pack, pad
from alignkit.data.dataset import PreferenceExample, data_fingerprint, load_preference_data
from alignkit.errors import AlignkitError, ConfigError
from alignkit.io import atomic_write, atomic_write_text
from alignkit.losses.preference import PreferenceLossOutput, dpo_loss, ipo_loss, orpo_loss, simpo_loss
from alignkit.models.adapters import save_trained_model
from alignkit.models.forward import compile_decoder_layers
from alignkit.models.loader import model_fingerprint, resolve_device
from alignkit.models.logprobs import sequence_logps
from alignkit.models.reference import Reference
from alignkit.result import CommandResult, say
from alignkit.training.checkpoint import write_run_manifest
from alignkit.training.distributed import Distributed, leaves_its_group, setup_distributed
from alignkit.training.loop import LoopResult, run_loop
from alignkit.training.parallel import gather_for_export
from alignkit.training.setup import lint_or_refuse, load_train_eval, prepare_model

REFERENCE_FREE = ("simpo", "orpo")
DEFAULT_BETA = {"sigmoid": 0.1, "ipo": 0.1, "cdpo": 0.1, "simpo": 2.0, "orpo": 0.1}
REFERENCE_CACHE = "reference_logps.safetensors"


def resolve_reference(cfg: DPOConfig) -> str:
    """The reference kind ``auto`` stands for, after refusing combinations that cannot be right."""
    if cfg.loss == "cdpo" and cfg.label_smoothing == 0:
        raise ConfigError("loss=cdpo needs label_smoothing > 0 (e.g. 0.1)", field="label_smoothing")
    if cfg.sft_weight and cfg.loss == "orpo":
        raise ConfigError("loss=orpo already has an SFT term (its beta weighs the odds ratio); leave "
                          "sft_weight=0", field="sft_weight")
    if cfg.label_smoothing and cfg.loss in ("ipo", "orpo"):
        raise ConfigError(f"loss={cfg.loss} has no label smoothing", field="label_smoothing")
    reference_free = cfg.loss in REFERENCE_FREE
    if cfg.reference == "auto":
        if reference_free:
            return "none"
        if cfg.adapter:
            return "precomputed"
        return "copy" if cfg.finetune == "full" else "adapter_disabled"
    if reference_free and cfg.reference != "none":
        raise ConfigError(
            f"loss={cfg.loss} is reference-free; leave reference=auto (or none)", field="reference"
        )
    if not reference_free and cfg.reference == "none":
        raise ConfigError(
            f"loss={cfg.loss} needs a reference: copy, adapter_disabled or precomputed", field="reference"
        )
    if cfg.reference == "adapter_disabled":
        if cfg.adapter:
            raise ConfigError(
                "with adapter=DIR the reference should be that SFT model, but disabling the adapter "
                "gives the base model; use reference=precomputed (the default) or copy",
                field="reference",
            )
        if cfg.finetune == "full":
            raise ConfigError(
                "reference=adapter_disabled needs finetune=lora (full fine-tuning has no adapter "
                "to disable); use copy or precomputed",
                field="reference",
            )
    return cfg.reference


# ---------------------------------------------------------------------------------------------
# Log-probs of every completion of a micro-batch, in one packed forward


def pair_batch(pairs: Sequence[PreferenceExample], *, packed: bool, pad_id: int) -> Batch:
    """Sequences 0..B-1 are the chosen completions, B..2B-1 the rejected ones, in pair order."""
    sequences = [(p.chosen_ids, p.chosen_mask) for p in pairs] + [
        (p.rejected_ids, p.rejected_mask) for p in pairs
    ]
    return pack(sequences) if packed else pad(sequences, pad_id)


# ---------------------------------------------------------------------------------------------
# References: each returns the reference log-probs (2B,) of the batch's sequences

ReferenceFn = Callable[[Any, Sequence[PreferenceExample], Batch], torch.Tensor]


class ModelReference:
    """A reference model (``models.reference``: frozen copy or adapter disabled) as a ``ReferenceFn``."""

    def __init__(self, reference: Reference, chunk_size: int) -> None:
        self.reference = reference
        self.chunk_size = chunk_size

    def __call__(self, policy: Any, pairs: Sequence[PreferenceExample], batch: Batch) -> torch.Tensor:
        return self.reference.sequence_logps(policy, batch, chunk_size=self.chunk_size)


@dataclass
class PairWithReference(PreferenceExample):
    """A pair carrying its precomputed reference log-probs."""

    ref_chosen_logps: float = 0.0
    ref_rejected_logps: float = 0.0


def precomputed_reference(policy: Any, pairs: Sequence[PreferenceExample], batch: Batch) -> torch.Tensor:
    values = [p.ref_chosen_logps for p in pairs] + [p.ref_rejected_logps for p in pairs]  # type: ignore[attr-defined]
    return torch.tensor(values, dtype=torch.float32, device=batch.input_ids.device)


# ---------------------------------------------------------------------------------------------
# The loss of a micro-batch


def preference_loss(
    loss: str,
    logps: torch.Tensor,
    lengths: torch.Tensor,
    ref_logps: torch.Tensor | None,
    *,
    beta: float,
    label_smoothing: float,
    simpo_gamma: float,
    sft_weight: float = 0.0,
) -> PreferenceLossOutput:
    """Dispatches to the pure losses. logps, lengths, ref_logps: (2B,), chosen first then rejected.

    ``sft_weight`` > 0 adds ``sft_weight * (-chosen / |chosen|)`` (the chosen reply's per-token NLL)
    to each example's loss (RPO; ORPO has this term built in, so it refuses the extra one).
    """
    output = _preference_loss(loss, logps, lengths, ref_logps, beta=beta, label_smoothing=label_smoothing,
                              simpo_gamma=simpo_gamma)
    if not sft_weight:
        return output
    if loss == "orpo":
        raise ValueError("loss=orpo already has an SFT term; sft_weight is for the other losses")
    n = logps.shape[0] // 2
    chosen_nll = -logps[:n] / lengths[:n].float()
    return output._replace(losses=output.losses + sft_weight * chosen_nll)


def _preference_loss(
    loss: str,
    logps: torch.Tensor,
    lengths: torch.Tensor,
    ref_logps: torch.Tensor | None,
    *,
    beta: float,
    label_smoothing: float,
    simpo_gamma: float,
) -> PreferenceLossOutput:
    n = logps.shape[0] // 2
    chosen, rejected = logps[:n], logps[n:]
    chosen_lengths, rejected_lengths = lengths[:n].float(), lengths[n:].float()
    if loss == "simpo":
        return simpo_loss(
            chosen,
            rejected,
            chosen_lengths=chosen_lengths,
            rejected_lengths=rejected_lengths,
            beta=beta,
            gamma=simpo_gamma,
            label_smoothing=label_smoothing,
        )
    if loss == "orpo":
        return orpo_loss(
            chosen,
            rejected,
            chosen_lengths=chosen_lengths,
            rejected_lengths=rejected_lengths,
            chosen_nll=-chosen / chosen_lengths,
            beta=beta,
        )
    if ref_logps is None:
        raise ValueError(f"loss={loss} needs reference log-probs")
    ref_chosen, ref_rejected = ref_logps[:n], ref_logps[n:]
    if loss == "ipo":
        return ipo_loss(
            chosen / chosen_lengths,
            rejected / rejected_lengths,
            ref_chosen / chosen_lengths,
            ref_rejected / rejected_lengths,
            beta=beta,
        )
    return dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta=beta, label_smoothing=label_smoothing)


def pair_metrics(output: PreferenceLossOutput, logps: torch.Tensor) -> dict[str, float]:
    """Metric *sums* over the micro-batch's pairs (the loop divides by the global number of pairs)."""
    n = logps.shape[0] // 2
    chosen_rewards, rejected_rewards = output.chosen_rewards, output.rejected_rewards
    return {
        "rewards/chosen": float(chosen_rewards.sum()),
        "rewards/rejected": float(rejected_rewards.sum()),
        "rewards/margin": float((chosen_rewards - rejected_rewards).sum()),
        "rewards/accuracy": float((chosen_rewards > rejected_rewards).sum()),
        "logps/chosen": float(logps[:n].detach().sum()),
        "logps/rejected": float(logps[n:].detach().sum()),
    }


class DPOObjective:
    """Preference loss summed over pairs; normaliser = pairs."""

    def __init__(
        self,
        *,
        loss: str,
        beta: float,
        label_smoothing: float,
        simpo_gamma: float,
        reference: ReferenceFn | None,
        packed: bool,
        pad_id: int,
        chunk_size: int,
        device: torch.device,
        sft_weight: float = 0.0,
    ) -> None:
        self.loss_name = loss
        self.sft_weight = sft_weight
        self.beta = beta
        self.label_smoothing = label_smoothing
        self.simpo_gamma = simpo_gamma
        self.reference = reference
        self.packed = packed
        self.pad_id = pad_id
        self.chunk_size = chunk_size
        self.device = device

    def normalizer(self, pairs: Sequence[PreferenceExample]) -> float:
        return float(len(pairs))

    def loss(self, model: Any, pairs: Sequence[PreferenceExample]) -> tuple[torch.Tensor, dict[str, float]]:
        batch = pair_batch(pairs, packed=self.packed, pad_id=self.pad_id).to(self.device)
        logps, lengths = sequence_logps(model, batch, chunk_size=self.chunk_size)
        ref_logps = None if self.reference is None else self.reference(model, pairs, batch)
        output = preference_loss(
            self.loss_name,
            logps,
            lengths,
            ref_logps,
            beta=self.beta,
            label_smoothing=self.label_smoothing,
            simpo_gamma=self.simpo_gamma,
            sft_weight=self.sft_weight,
        )
        return output.losses.sum(), pair_metrics(output, logps)


# ---------------------------------------------------------------------------------------------
# Precomputed reference log-probs, cached with fingerprints


@torch.no_grad()
def compute_reference_logps(
    model: Any,
    pairs: Sequence[PreferenceExample],
    *,
    batch_size: int,
    packed: bool,
    pad_id: int,
    chunk_size: int,
    dist: Distributed,
) -> torch.Tensor:
    """(N, 2) float32: chosen and rejected log-probs of every pair under ``model`` as it is now.

    Each process computes a strided share; an all-reduce of the zero-filled table assembles it.
    """
    was_training = model.training
    model.eval()
    table = torch.zeros(len(pairs), 2, dtype=torch.float32, device=dist.device)
    mine = list(range(dist.rank, len(pairs), dist.world_size))
    for start in range(0, len(mine), batch_size):
        indices = mine[start : start + batch_size]
        batch = pair_batch([pairs[i] for i in indices], packed=packed, pad_id=pad_id).to(dist.device)
        logps, _ = sequence_logps(model, batch, chunk_size=chunk_size)
        table[indices] = torch.stack([logps[: len(indices)], logps[len(indices) :]], dim=1)
    if dist.world_size > 1:
        torch.distributed.all_reduce(table)
    if was_training:
        model.train()
    return table.cpu()


def _check_cache(cache: Path, fingerprints: dict[str, str], sizes: dict[str, int]) -> dict[str, torch.Tensor]:
    with safe_open(str(cache), framework="pt") as handle:
        metadata = handle.metadata() or {}
    for key, what in (("data_fingerprint", "data"), ("model_fingerprint", "model")):
        if metadata.get(key) != fingerprints[key]:
            raise AlignkitError(
                f"these reference log-probs were computed for other {what} ({metadata.get(key)}, now "
                f"{fingerprints[key]}); delete the file or use a new out folder to recompute them",
                source=str(cache),
                field="reference",
            )
    tensors = load_file(str(cache))
    for name, size in sizes.items():
        if name not in tensors or tensors[name].shape[0] != size:
            raise AlignkitError(
                f"the cache does not cover the {size} {name} pairs; delete it to recompute",
                source=str(cache),
                field="reference",
            )
    return tensors


def load_or_compute_reference(
    cache: Path,
    fingerprints: dict[str, str],
    splits: dict[str, Sequence[PreferenceExample]],
    compute: Callable[[Sequence[PreferenceExample]], torch.Tensor],
    dist: Distributed,
) -> dict[str, torch.Tensor]:
    """Reuses a matching cache (refusing a stale one), or computes every split and writes the cache."""
    sizes = {name: len(pairs) for name, pairs in splits.items() if pairs}
    if cache.is_file():
        return _check_cache(cache, fingerprints, sizes)
    tensors = {name: compute(pairs) for name, pairs in splits.items() if pairs}
    if dist.is_main:
        contiguous = {k: v.contiguous() for k, v in tensors.items()}
        atomic_write(cache, lambda tmp: save_file(contiguous, str(tmp), metadata=fingerprints))
    dist.barrier()
    return tensors


def with_reference(pairs: Sequence[PreferenceExample], table: torch.Tensor) -> list[PreferenceExample]:
    return [
        PairWithReference(
            **vars(pair), ref_chosen_logps=float(table[i, 0]), ref_rejected_logps=float(table[i, 1])
        )
        for i, pair in enumerate(pairs)
    ]


def reference_fingerprints(cfg: DPOConfig, loaded: Any) -> dict[str, str]:
    """What the reference log-probs depend on: the data (files + formatting) and the starting weights."""
    import hashlib


    data_parts = [
        data_fingerprint(cfg.data.train or ""),
        data_fingerprint(cfg.data.eval) if cfg.data.eval else "",
        json.dumps(cfg.data.model_dump(mode="json", exclude={"train", "eval"}), sort_keys=True),
        str(cfg.train.seed) if cfg.data.eval_fraction and not cfg.data.eval else "",
    ]
    model_parts = [model_fingerprint(loaded), data_fingerprint(cfg.adapter) if cfg.adapter else "", cfg.dtype]
    digest = {
        name: hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
        for name, parts in (("data_fingerprint", data_parts), ("model_fingerprint", model_parts))
    }
    return digest


# ---------------------------------------------------------------------------------------------
# The recipe


@leaves_its_group
def run_dpo(cfg: DPOConfig, *, stop_after_step: int | None = None) -> LoopResult:
    """Runs DPO (or a relative) as configured; returns the loop result. Outputs go to ``cfg.out``."""

    if not cfg.data.train:
        raise AlignkitError(
            "no training data: set data.train=PATH (prompt/chosen/rejected records)", field="data.train"
        )
    reference_kind = resolve_reference(cfg)
    beta = cfg.beta or DEFAULT_BETA[cfg.loss]
    torch.manual_seed(cfg.train.seed)
    dist = setup_distributed(resolve_device(cfg.device))
    output_dir = Path(cfg.out)
    loaded, model = prepare_model(cfg, dist)
    tokenizer = loaded.tokenizer
    lint_or_refuse(cfg, tokenizer, getattr(model, "generation_config", None))
    train_pairs, eval_pairs, report = load_train_eval(
        cfg, tokenizer, dist, load_preference_data, unit="pairs"
    )
    if dist.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output_dir / "config.yaml", config_to_yaml(cfg))
    batching: dict[str, Any] = {
        "packed": cfg.train.packing,
        "pad_id": tokenizer.pad_token_id or 0,
        "chunk_size": cfg.train.loss_chunk_size,
    }

    # The reference is taken from the model *before* run_loop restores a checkpoint: the starting weights.
    reference: ReferenceFn | None = None
    if reference_kind == "copy":
        reference = ModelReference(Reference(model, kind="copy"), cfg.train.loss_chunk_size)
    elif reference_kind == "adapter_disabled":
        reference = ModelReference(Reference(model, kind="adapter_disabled"), cfg.train.loss_chunk_size)
    elif reference_kind == "precomputed":
        tables = load_or_compute_reference(
            output_dir / REFERENCE_CACHE,
            reference_fingerprints(cfg, loaded),
            {"train": train_pairs, "eval": eval_pairs},
            lambda pairs: compute_reference_logps(
                model, pairs, batch_size=cfg.train.batch_size, dist=dist, **batching
            ),
            dist,
        )
        train_pairs = with_reference(train_pairs, tables["train"])
        eval_pairs = with_reference(eval_pairs, tables["eval"]) if eval_pairs else []
        reference = precomputed_reference
    objective = DPOObjective(
        loss=cfg.loss,
        beta=beta,
        label_smoothing=cfg.label_smoothing,
        simpo_gamma=cfg.simpo_gamma,
        reference=reference,
        device=dist.device,
        sft_weight=cfg.sft_weight,
        **batching,
    )
    if cfg.train.compile:
        compile_decoder_layers(model)
    result = run_loop(
        model=model,
        objective=objective,
        train_examples=train_pairs,
        eval_examples=eval_pairs,
        cfg=cfg.train,
        output_dir=output_dir,
        config_hash=config_hash(cfg),
        resume=cfg.resume,
        dist=dist,
        description=f"dpo ({cfg.loss})",
        stop_after_step=stop_after_step,
    )
    finished = stop_after_step is None or result.state.step >= stop_after_step
    exported = gather_for_export(model) if finished else None  # collective under FSDP: every rank gathers
    if dist.is_main and finished:
        final = output_dir / ("adapter" if cfg.finetune != "full" or cfg.adapter else "model")
        save_trained_model(model, tokenizer, final, state_dict=exported)
        write_run_manifest(output_dir, kind="dpo", cfg=cfg, result=result, report=report, output=final,
                           count_name="pairs", count=len(train_pairs), loss=cfg.loss, beta=beta, reference=reference_kind)
    return result


def dpo_command(cfg: DPOConfig, progress: Callable[[str], None] | None = None) -> CommandResult:
    """``alignkit dpo``: the run, and its final model or adapter as the output."""
    result = run_dpo(cfg)
    final = "model" if (Path(cfg.out) / "model").is_dir() else "adapter"
    return CommandResult(
        output=str(Path(cfg.out) / final), outputs={"model": cfg.model},
        show=say(f"dpo ({cfg.loss}) done: {result.state.step} steps ({result.state.nonfinite_steps} skipped), "
                 f"outputs in {cfg.out}"),
    )
