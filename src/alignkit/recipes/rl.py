"""What PPO and GRPO share, in the order a rollout step uses it.

1. Setup: the config checks, the policy (``adapter=SFT_DIR`` is *merged* into the base first, so the
   starting weights are exactly the SFT model; a new LoRA on top then gives the reference for free by
   disabling it: ``disable_adapter()`` yields base + SFT, not the bare base; full fine-tuning keeps a
   frozen copy), the value model, the scorer (``rewards``) and the prompts (``data.prompt_sets``).
   A LoRA run on an SFT adapter is exported as one stacked adapter (SFT and RL factors concatenated,
   PEFT's ``cat``) that loads on the plain base model.
2. Rollouts (``training.rollout``) scored, with the stop penalty for replies cut at the token limit.
3. Per-token forwards (``models.logprobs``) of the policy, the value model and the reference.
4. The run's bookkeeping and update step live in ``training.rl_run``.
5. Held-out evaluation: reward and KL to the reference on fixed-seed samples.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from alignkit.config.base import config_hash, config_to_yaml
from alignkit.config.rl import RLFields
from alignkit.data.dataset import data_fingerprint
from alignkit.data.prompt_sets import load_prompts
from alignkit.errors import ConfigError, DataError
from alignkit.generation.types import Chat
from alignkit.io import atomic_write_text
from alignkit.losses.rl import kl_estimate, masked_mean, masked_sum, stop_penalty
from alignkit.models.adapters import apply_lora, peft_wrapping, save_trained_model
from alignkit.models.attention import use_packed_attention
from alignkit.models.loader import load_from_fields, resolve_device
from alignkit.models.logprobs import TokenOutputs, reply_mask, to_rows, token_forward
from alignkit.models.reference import Reference
from alignkit.models.unwrap import base_causal_lm
from alignkit.models.value_head import CriticModel, ValueHead
from alignkit.result import CommandResult, say
from alignkit.rewards.scorers import Scorer, make_scorer
from alignkit.training.checkpoint import (
    versions,
)
from alignkit.training.distributed import Distributed, setup_distributed
from alignkit.training.parallel import gather_for_export
from alignkit.training.rl_run import RLResult, RLRun, Trainable
from alignkit.training.rollout import Rollout, generate
from alignkit.training.step import autocast

log = logging.getLogger(__name__)


def check_config(cfg: RLFields, *, sequences_per_step: int, world_size: int) -> None:
    """Refuses settings this recipe cannot honour, before anything is loaded."""
    train = cfg.train
    if cfg.finetune == "lora" and cfg.lora.dropout > 0:
        # Dropout makes the first update's ratio differ from 1 and the KL from 0 for no reason (TRL turns it off).
        raise ConfigError(
            "RL needs lora.dropout=0 (dropout would make π/π_old != 1 on unchanged weights)",
            field="lora.dropout",
        )
    for name, value in (
        ("early_stopping_patience", train.early_stopping_patience),
        ("compile", train.compile),
    ):
        if value:
            raise ConfigError(f"train.{name} is not supported by ppo/grpo", field=f"train.{name}")
    if cfg.rollout.prompts_per_step % world_size:
        raise ConfigError(
            f"rollout.prompts_per_step={cfg.rollout.prompts_per_step} must be divisible by the "
            f"{world_size} processes",
            field="rollout.prompts_per_step",
        )
    mini = train.batch_size * train.grad_accum
    local = sequences_per_step // world_size
    if local % mini:
        raise ConfigError(
            f"{local} replies per process and step are not a whole number of mini-batches of "
            f"train.batch_size x train.grad_accum = {mini}",
            field="train.batch_size",
        )
    if cfg.adapter and cfg.finetune == "lora":
        adapter_config = (
            json.loads((Path(cfg.adapter) / "adapter_config.json").read_text())
            if (Path(cfg.adapter) / "adapter_config.json").is_file()
            else {}
        )
        if (
            cfg.lora.use_dora
            or cfg.lora.use_rslora
            or adapter_config.get("use_dora")
            or adapter_config.get("use_rslora")
        ):
            raise ConfigError(
                "LoRA RL on an SFT adapter exports one stacked adapter, which PEFT cannot build "
                "with DoRA or rsLoRA; use plain LoRA or finetune=full",
                field="lora",
            )


def load_policy(cfg: RLFields, dist: Distributed) -> tuple[Any, Any]:
    """(loaded, policy). With ``adapter``, the SFT adapter is merged first: the start is the SFT model."""

    loaded = load_from_fields(cfg, device=str(dist.device), seed=cfg.train.seed)
    model = loaded.model.merge_and_unload() if cfg.adapter else loaded.model
    if cfg.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.finetune == "lora":
        torch.manual_seed(cfg.train.seed)
        model = apply_lora(model, cfg.lora)
        if cfg.train.gradient_checkpointing:
            model.enable_input_require_grads()
    if cfg.train.packing:
        use_packed_attention(model)
    return loaded, model


def save_policy(cfg: RLFields, policy: Any, tokenizer: Any, output_dir: Path, *,
                state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """``model/`` (full) or ``adapter/`` that loads on ``cfg.model`` (stacked with the SFT adapter if any).

    ``state_dict``: the policy's weights gathered from FSDP shards (``gather_for_export``), else None.
    """

    if cfg.finetune == "full":
        save_trained_model(policy, tokenizer, output_dir / "model", state_dict=state_dict)
        return output_dir / "model"
    final = output_dir / "adapter"
    if not cfg.adapter:
        save_trained_model(policy, tokenizer, final, state_dict=state_dict)
        return final
    from peft import PeftModel


    trained = output_dir / ".rl-adapter-on-sft"
    policy.save_pretrained(trained, safe_serialization=True, state_dict=state_dict)
    # The base alone: the SFT adapter is stacked on it below.
    base = load_from_fields(cfg, spec=cfg.model, device="cpu", seed=cfg.train.seed).model
    with peft_wrapping():
        stacked = PeftModel.from_pretrained(base, cfg.adapter, adapter_name="sft")
    stacked.load_adapter(str(trained), adapter_name="rl")
    # cat: A = [s_sft A_sft; s_rl A_rl], B = [B_sft, B_rl], scaling 1: base + ΔW_sft + ΔW_rl exactly.
    stacked.add_weighted_adapter(["sft", "rl"], [1.0, 1.0], adapter_name="default", combination_type="cat")
    stacked.set_adapter("default")
    for name in ("sft", "rl"):
        stacked.delete_adapter(name)
    save_trained_model(stacked, tokenizer, final)
    shutil.rmtree(trained, ignore_errors=True)
    return final


def make_value_model(cfg: Any, policy: Any, dist: Distributed) -> torch.nn.Module:
    """``critic=head``: a value head on the policy trunk; ``critic=model``: a separate trunk + head."""

    hidden = int(base_causal_lm(policy).config.hidden_size)
    if cfg.ppo.critic == "head":
        return ValueHead(hidden, dist.device)
    lm = copy.deepcopy(policy)
    if cfg.finetune == "lora":
        lm = lm.merge_and_unload()  # the fresh adapter is zero: this is the starting model exactly
        torch.manual_seed(cfg.train.seed + 1)
        lm = apply_lora(lm, cfg.lora)
    return CriticModel(lm, hidden, dist.device)


@dataclass
class Scores:
    """Rewards of a rollout's replies, (B,) float32 each."""

    raw: torch.Tensor  # what the source said (``unscored`` where it said nothing)
    penalised: torch.Tensor  # raw minus the stop penalty of replies cut at the token limit
    unscored: int


def score_replies(
    source: Scorer,
    chats: list[Chat],
    replies: list[str],
    stopped: torch.Tensor,
    *,
    unscored: float,
    penalty: float,
) -> Scores:
    values = source.score(chats, replies)
    missing = sum(v is None for v in values)
    raw = torch.tensor([unscored if v is None else v for v in values], dtype=torch.float32)
    return Scores(raw=raw, penalised=stop_penalty(raw, stopped, penalty=penalty), unscored=missing)


def micro_forward(run: RLRun, rollout: Rollout, micro: list[int], *, values: bool = False) -> TokenOutputs:
    """``token_forward`` of the policy (with gradient) on the replies ``micro``, as the run samples them."""
    cfg = run.cfg
    batch = rollout.batch(micro, packed=cfg.train.packing, pad_id=run.pad_id).to(run.dist.device)
    with autocast(run.dist.device, run.trainable):
        return run.forward(partial(  # type: ignore[no-any-return]
            token_forward,
            run.policy,
            batch,
            temperature=cfg.rollout.temperature,
            chunk_size=cfg.train.loss_chunk_size,
            value_model=run.value_model if values else None,
        ))


@torch.no_grad()
def rollout_tensors(
    run: RLRun, rollout: Rollout, *, policy: bool = True, values: bool = False, reference: bool = False
) -> dict[str, torch.Tensor]:
    """No-grad forwards over the rollout, as (B, T) rows on the CPU, T = the longest reply.

    ``old_logps`` and ``entropy`` (policy), ``old_values`` (values), ``ref_logps`` (reference, when the
    run has one), and always ``mask``, 1 on reply tokens.
    """
    device, width = run.dist.device, int(rollout.lengths.max())
    out: dict[str, list[torch.Tensor]] = {"old_logps": [], "entropy": [], "old_values": [], "ref_logps": []}
    was_training = run.trainable.training
    run.trainable.eval()
    # The same autocast as the training forwards (micro_forward): at an unchanged policy the ratio is 1.
    with run.gathered(), autocast(device, run.trainable):
        _rollout_forwards(run, rollout, out, width=width, policy=policy, values=values, reference=reference)
    run.trainable.train(was_training)
    tensors = {key: torch.cat(rows) for key, rows in out.items() if rows}
    tensors["mask"] = reply_mask(rollout.lengths, width)
    return tensors


def _rollout_forwards(run: RLRun, rollout: Rollout, out: dict[str, list[torch.Tensor]], *, width: int, policy: bool,
                      values: bool, reference: bool) -> None:
    device = run.dist.device
    temperature, chunk_size = run.cfg.rollout.temperature, run.cfg.train.loss_chunk_size
    for start in range(0, len(rollout), run.cfg.train.batch_size):
        indices = list(range(start, min(start + run.cfg.train.batch_size, len(rollout))))
        batch = rollout.batch(indices, packed=run.cfg.train.packing, pad_id=run.pad_id).to(device)
        lengths = rollout.lengths[indices]
        if policy or values:
            result = token_forward(
                run.policy,
                batch,
                temperature=temperature,
                chunk_size=chunk_size,
                value_model=run.value_model if values else None,
            )
            if policy:
                out["old_logps"].append(to_rows(result.logps.cpu(), lengths, width))
                out["entropy"].append(to_rows(result.entropy_or_fail().cpu(), lengths, width))
            if values:
                out["old_values"].append(to_rows(result.values.cpu(), lengths, width))  # type: ignore[union-attr]
        if reference and run.reference is not None:
            ref = run.reference.logps(run.policy, batch, temperature=temperature, chunk_size=chunk_size)
            out["ref_logps"].append(to_rows(ref.cpu(), lengths, width))


def command_result(kind: str, model: str, result: RLResult) -> CommandResult:
    """What ``alignkit ppo`` / ``alignkit grpo`` return: the final policy as the output."""
    return CommandResult(
        output=str(result.output), outputs={"model": model},
        show=say(f"{kind} done: {result.state.step} rollout steps ({result.state.nonfinite_steps} updates skipped), "
                 f"policy in {result.output}"),
    )


def start_run(
    cfg: Any,
    *,
    description: str,
    samples_per_prompt: int,
    value_model: bool,
    reference: bool,
    kl_controller: Any = None,
) -> tuple[RLRun, Scorer, Any]:
    """Loads policy, reference, value model, reward source and prompts; restores a checkpoint."""

    torch.manual_seed(cfg.train.seed)
    dist = setup_distributed(resolve_device(cfg.device))
    check_config(
        cfg, sequences_per_step=cfg.rollout.prompts_per_step * samples_per_prompt, world_size=dist.world_size
    )
    source = make_scorer(
        cfg.reward, device=str(dist.device), dtype=cfg.dtype
    )  # fails fast on a bad path
    loaded, policy = load_policy(cfg, dist)
    prompts, eval_prompts, dropped = load_prompts(cfg.data, loaded.tokenizer, cfg.train.seed)
    if len(prompts) < dist.world_size:
        raise DataError(f"{len(prompts)} prompts for {dist.world_size} processes", source=cfg.data.train)
    if 0 < len(eval_prompts) < dist.world_size:
        raise DataError(
            f"{len(eval_prompts)} held-out prompts for {dist.world_size} processes", source=cfg.data.eval
        )
    if dropped:
        log.warning(
            "%d prompts longer than data.max_prompt_length=%d were dropped",
            dropped,
            cfg.data.max_prompt_length,
        )
    # Both are taken from the starting weights, before a checkpoint is restored.
    ref = Reference(policy, kind="adapter_disabled" if cfg.finetune == "lora" else "copy") if reference else None
    values = make_value_model(cfg, policy, dist) if value_model else None
    output_dir = Path(cfg.out)
    if dist.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output_dir / "config.yaml", config_to_yaml(cfg))
    sequences = cfg.rollout.prompts_per_step * samples_per_prompt // dist.world_size
    mini = cfg.train.batch_size * cfg.train.grad_accum
    epochs = cfg.ppo.epochs if hasattr(cfg, "ppo") else cfg.grpo.iterations
    run = RLRun(
        cfg=cfg,
        dist=dist,
        output_dir=output_dir,
        config_hash=config_hash(cfg),
        trainable=Trainable(policy, values),
        reference=ref,
        tokenizer=loaded.tokenizer,
        prompts=prompts,
        eval_prompts=eval_prompts,
        updates_per_step=epochs * (sequences // mini),
        description=description,
        kl_controller=kl_controller,
        dropped_prompts=dropped,
    )
    return run, source, loaded


def finish_run(run: RLRun, *, kind: str, stop_after_step: int | None, extra: dict[str, Any]) -> RLResult:
    """Saves the policy and a run manifest (unless stopped early for a test)."""

    cfg, output = run.cfg, None
    finished = stop_after_step is None or run.state.step >= run.total_steps
    exported = gather_for_export(run.policy) if finished else None  # collective under FSDP: every rank gathers
    if run.dist.is_main and finished:
        output = save_policy(cfg, run.policy, run.tokenizer, run.output_dir, state_dict=exported)
        manifest = {
            "kind": kind,
            "config_hash": run.config_hash,
            "data_fingerprint": data_fingerprint(cfg.data.train) if cfg.data.train else None,
            "base_model": cfg.model,
            "adapter": cfg.adapter,
            "finetune": cfg.finetune,
            "output": str(output),
            "steps": run.state.step,
            "optimizer_steps": run.state.optimizer_steps,
            "nonfinite_steps": run.state.nonfinite_steps,
            "prompts": len(run.prompts),
            "eval_prompts": len(run.eval_prompts),
            "dropped_prompts": run.dropped_prompts,
            "evals": run.evals,
            "versions": versions(),
            **extra,
        }
        atomic_write_text(run.output_dir / "run.json", json.dumps(manifest, indent=2))
    return RLResult(state=run.state, last_checkpoint=run.last_checkpoint, evals=run.evals, output=output)


@torch.no_grad()
def evaluate(run: RLRun, source: Scorer, *, samples_per_prompt: int = 1) -> dict[str, float]:
    """Mean reward, stop share, length and KL to the reference of fixed-seed samples on held-out prompts.

    KL is the per-reply sum of k1 = log π - log π_ref over the sampled tokens (mean over replies; an
    unbiased estimate of KL(π‖π_ref) per reply), plus the token-mean k3 (always >= 0).
    """
    started = time.perf_counter()
    prompts = run.eval_prompts[run.dist.rank :: run.dist.world_size]
    with run.gathered():
        rollout = generate(
            run.policy,
            run.tokenizer,
            prompts,
            cfg=run.cfg,
            seed=run.cfg.rollout.eval_seed,
            samples_per_prompt=samples_per_prompt,
        )
    scores = score_replies(
        source,
        [rollout.prompt_of(i).chat for i in range(len(rollout))],
        rollout.texts,
        rollout.stopped,
        unscored=run.cfg.reward.unscored,
        penalty=run.cfg.reward.stop_penalty,
    )
    tensors = rollout_tensors(run, rollout, values=False, reference=True)
    n = float(len(rollout))
    sums = {
        "eval_reward": float(scores.raw.sum()),
        "eval_score": float(scores.penalised.sum()),
        "eval_stopped": float(rollout.stopped.float().sum()),
        "eval_length": float(rollout.lengths.sum()),
    }
    if "ref_logps" in tensors:
        k1 = kl_estimate(tensors["old_logps"], tensors["ref_logps"], kind="k1")
        k3 = kl_estimate(tensors["old_logps"], tensors["ref_logps"], kind="k3")
        sums["eval_kl"] = float(masked_sum(k1, tensors["mask"]))
        sums["eval_kl_k3_token"] = float(masked_mean(k3, tensors["mask"])) * n
    total = run.dist.all_sum(n)
    result = {key: run.dist.all_sum(value) / max(total, 1.0) for key, value in sums.items()}
    result["eval_time_s"] = time.perf_counter() - started
    return result
