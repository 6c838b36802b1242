"""What PPO and GRPO share, in the order a rollout step uses it.

1. Example reward functions (``short_and_stops``, ``mentions_word``) and the reward sources: a
   Python function by import path, a reward-model folder, or an LLM judge through any ``Generator``.
2. Prompts: read, rendered with the chat template, too-long ones dropped and counted.
3. Policy and reference. ``adapter=SFT_DIR`` is *merged* into the base first, so the starting weights
   are exactly the SFT model; a new LoRA on top then gives the reference for free by disabling it
   (``disable_adapter()`` yields base + SFT, not the bare base). Full fine-tuning keeps a frozen copy.
   A LoRA run on an SFT adapter is exported as one stacked adapter (SFT and RL factors concatenated,
   PEFT's ``cat``) that loads on the plain base model.
4. Rollouts through ``LocalGenerator`` (transformers generate, KV cache, left-padded prompts).
5. Per-token forwards: log-probs of the sampled tokens (at the sampling temperature), entropy and
   values, in one packed forward, projected to the vocabulary only at reply positions.
6. ``RLRun``: optimizer, scheduler, prompt sampler, rollout RNG, KL controller, checkpoints, metrics,
   and the update step with the non-finite guard (skip, count, abort after
   ``train.max_nonfinite_steps``), summing gradients over processes.
7. Held-out evaluation: reward and KL to the reference on fixed-seed samples.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from alignkit.config.base import config_hash, config_to_yaml
from alignkit.config.rl import PromptDataSection, RewardSection, RLFields
from alignkit.data.collate import Batch, pack, pad
from alignkit.data.dataset import resolve_chat_template
from alignkit.data.formatting import generation_prompt_ids
from alignkit.data.prompts import read_prompt_chats
from alignkit.errors import AlignkitError, CheckpointError, ConfigError, DataError
from alignkit.generation.http import OpenAICompatibleGenerator
from alignkit.generation.local import LocalGenerator
from alignkit.generation.types import Chat, GenerationParams
from alignkit.io import atomic_write_text
from alignkit.losses.rl import entropy_from_logits, kl_estimate, masked_mean, masked_sum, stop_penalty
from alignkit.losses.sft import shifted_targets
from alignkit.models.adapters import apply_lora, peft_wrapping, save_trained_model
from alignkit.models.attention import use_packed_attention
from alignkit.models.forward import hidden_states, lm_head
from alignkit.models.loader import load_from_fields, load_model, resolve_device
from alignkit.models.reward_head import load_reward_model
from alignkit.models.unwrap import base_causal_lm
from alignkit.result import CommandResult, say
from alignkit.synth.prefs import LLMJudge, RewardModelJudge
from alignkit.training.checkpoint import (
    LoopState,
    find_resume_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    trainable_state,
    versions,
)
from alignkit.training.loop import (
    Distributed,
    MetricsWriter,
    NonFiniteAbort,
    Progress,
    build_optimizer,
    build_scheduler,
    peak_memory_mb,
    setup_distributed,
)
from alignkit.training.sampler import ResumableSampler

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# 1. Rewards


def short_and_stops(prompt_chat: Chat, reply: str, *, max_chars: int = 200) -> float:
    """1 for an empty reply, falling linearly to 0 at ``max_chars`` characters (and below 0 after).

    An easy reward to climb: brevity. Pair it with ``reward.stop_penalty`` so that a reply cut at the
    token limit (long, and without end-of-turn) scores lowest: the policy learns to finish early.
    """
    del prompt_chat
    return 1.0 - len(reply.strip()) / max_chars


def mentions_word(prompt_chat: Chat, reply: str, *, word: str = "thanks") -> float:
    """1 when ``word`` appears in the reply (case-insensitive), else 0."""
    del prompt_chat
    return float(word.lower() in reply.lower())


# ``reward.function=alignkit.recipes.rl_common.example_rewards.short_and_stops`` resolves through this.
example_rewards = SimpleNamespace(short_and_stops=short_and_stops, mentions_word=mentions_word)


class RewardSource(Protocol):
    def score(self, chats: list[Chat], replies: list[str]) -> list[float | None]:
        """One reward per (prompt chat, reply text); None when this reply cannot be scored."""
        ...


def import_object(path: str) -> Any:
    """``pkg.module:name.attr`` or ``pkg.module.name``: the longest importable module, then attributes."""
    module_part, _, attr_part = path.partition(":")
    parts = module_part.split(".")
    attrs = attr_part.split(".") if attr_part else []
    problem = "no such module"
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError as exc:
            problem = str(exc)
            if attr_part:  # with a colon the module part must import as a whole
                break
            continue
        try:
            for name in parts[cut:] + attrs:
                obj = getattr(obj, name)
        except AttributeError as exc:
            problem = str(exc)
            break
        return obj
    raise ConfigError(
        f"cannot import {path!r} ({problem}; expected 'package.module:function')", field="reward.function"
    )


class FunctionReward:
    """A Python function ``f(prompt_chat, reply_text, **kwargs) -> float``."""

    def __init__(self, path: str, kwargs: dict[str, Any]) -> None:
        self.path = path
        self.fn = import_object(path)
        self.kwargs = kwargs
        if not callable(self.fn):
            raise ConfigError(f"{path!r} is not callable", field="reward.function")

    def score(self, chats: list[Chat], replies: list[str]) -> list[float | None]:
        out: list[float | None] = []
        for chat, reply in zip(chats, replies, strict=True):
            try:
                value = self.fn(chat, reply, **self.kwargs)
            except Exception as exc:
                raise AlignkitError(
                    f"reward function {self.path} raised {exc!r}", field="reward.function"
                ) from exc
            out.append(None if value is None else float(value))
        return out


def make_reward_source(cfg: RewardSection, *, device: str, dtype: str) -> RewardSource:
    """The configured reward: a function, a reward model folder, or an LLM judge (local or HTTP)."""

    if cfg.kind == "function":
        if not cfg.function:
            raise ConfigError(
                "reward.kind=function needs reward.function=module:function", field="reward.function"
            )
        return FunctionReward(cfg.function, cfg.kwargs)
    if cfg.kind == "reward_model":

        if not cfg.reward_model:
            raise ConfigError(
                "reward.kind=reward_model needs reward.reward_model=DIR", field="reward.reward_model"
            )
        return RewardModelJudge(
            load_reward_model(cfg.reward_model, device=device, dtype=dtype), batch_size=cfg.batch_size
        )
    generator: Any
    if cfg.url:

        if not cfg.api_model:
            raise ConfigError("reward.url needs reward.api_model", field="reward.api_model")
        generator = OpenAICompatibleGenerator(cfg.url, cfg.api_model, api_key_env=cfg.api_key_env)
    elif cfg.judge_model:

        judge = load_model(cfg.judge_model, device=device, dtype=dtype)
        judge.model.requires_grad_(False)
        generator = LocalGenerator(judge.model, judge.tokenizer, batch_size=cfg.batch_size)
    else:
        raise ConfigError(
            "reward.kind=llm needs reward.judge_model=SPEC or reward.url=URL", field="reward.judge_model"
        )
    return LLMJudge(generator, prompt=cfg.prompt, max_new_tokens=cfg.max_new_tokens)


@dataclass
class Scores:
    """Rewards of a rollout's replies, (B,) float32 each."""

    raw: torch.Tensor  # what the source said (``unscored`` where it said nothing)
    penalised: torch.Tensor  # raw minus the stop penalty of replies cut at the token limit
    unscored: int


def score_replies(
    source: RewardSource,
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


# ---------------------------------------------------------------------------------------------
# 2. Prompts


@dataclass
class Prompt:
    chat: Chat
    ids: list[int]
    name: str  # file#index, for messages about a batch


def _render(path: str, data: PromptDataSection, tokenizer: Any) -> tuple[list[Prompt], int]:

    template = resolve_chat_template(data.chat_template)
    prompts, dropped = [], 0
    for index, chat in enumerate(read_prompt_chats(path, system=data.system)):
        ids = generation_prompt_ids(tokenizer, chat, chat_template=template)
        if len(ids) > data.max_prompt_length:
            dropped += 1
            continue
        prompts.append(Prompt(chat=chat, ids=ids, name=f"{path}#{index}"))
    if not prompts:
        raise DataError(
            f"every prompt is longer than data.max_prompt_length={data.max_prompt_length}", source=path
        )
    return prompts, dropped


def load_prompts(
    data: PromptDataSection, tokenizer: Any, seed: int
) -> tuple[list[Prompt], list[Prompt], int]:
    """(train prompts, held-out prompts, prompts dropped for length)."""
    if not data.train:
        raise AlignkitError(
            "no prompts: set data.train=PATH (prompt or messages records)", field="data.train"
        )
    train, dropped = _render(data.train, data, tokenizer)
    held: list[Prompt] = []
    if data.eval:
        held, more = _render(data.eval, data, tokenizer)
        dropped += more
    elif data.eval_fraction > 0:
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
        count = max(1, round(data.eval_fraction * len(train)))
        chosen = set(order[:count])
        held = [p for i, p in enumerate(train) if i in chosen]
        train = [p for i, p in enumerate(train) if i not in chosen]
    return train, held, dropped


# ---------------------------------------------------------------------------------------------
# 3. Policy, reference and value model


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


class Reference:
    """Reference log-probs: the policy with its adapter disabled (LoRA), or a frozen copy (full)."""

    def __init__(self, policy: Any, *, lora: bool) -> None:
        self.model = None if lora else copy.deepcopy(policy).requires_grad_(False).eval()

    def logps(self, policy: Any, batch: Batch, *, temperature: float, chunk_size: int) -> torch.Tensor:
        with torch.no_grad():
            if self.model is not None:
                return token_forward(self.model, batch, temperature=temperature, chunk_size=chunk_size).logps
            with policy.disable_adapter():
                return token_forward(policy, batch, temperature=temperature, chunk_size=chunk_size).logps


class ValueHead(torch.nn.Module):
    """V(s_t) = w·h_t + b on the policy trunk's last hidden state; fp32, zero-initialised (V = 0 at start)."""

    def __init__(self, hidden_size: int, device: torch.device) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1, device=device, dtype=torch.float32)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def values(self, policy_hidden: torch.Tensor, batch: Batch, predict_mask: torch.Tensor) -> torch.Tensor:
        return self.linear(policy_hidden.float()).squeeze(-1)


class CriticModel(torch.nn.Module):
    """A separate critic: its own trunk (a copy of the starting model, LoRA or full) and a value head."""

    def __init__(self, lm: Any, hidden_size: int, device: torch.device) -> None:
        super().__init__()
        self.lm = lm
        self.head = ValueHead(hidden_size, device)

    def values(self, policy_hidden: torch.Tensor, batch: Batch, predict_mask: torch.Tensor) -> torch.Tensor:
        return self.head.values(hidden_states(self.lm, batch)[predict_mask], batch, predict_mask)


class Trainable(torch.nn.Module):
    """Every trained parameter in one module: one optimizer, one checkpoint (names say whose)."""

    def __init__(self, policy: Any, value_model: torch.nn.Module | None = None) -> None:
        super().__init__()
        self.policy = policy
        self.value_model = value_model


def save_policy(cfg: RLFields, policy: Any, tokenizer: Any, output_dir: Path) -> Path:
    """``model/`` (full) or ``adapter/`` that loads on ``cfg.model`` (stacked with the SFT adapter if any)."""

    if cfg.finetune == "full":
        save_trained_model(policy, tokenizer, output_dir / "model")
        return output_dir / "model"
    final = output_dir / "adapter"
    if not cfg.adapter:
        save_trained_model(policy, tokenizer, final)
        return final
    from peft import PeftModel


    trained = output_dir / ".rl-adapter-on-sft"
    policy.save_pretrained(trained, safe_serialization=True)
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


# ---------------------------------------------------------------------------------------------
# 4. Rollouts


@dataclass
class Rollout:
    """B replies; with G samples per prompt, reply i answers ``prompts[i // G]``."""

    prompts: list[Prompt]
    response_ids: list[list[int]]
    texts: list[str]
    stopped: torch.Tensor  # (B,) bool: ended with end-of-turn before the token limit
    samples_per_prompt: int = 1

    def __len__(self) -> int:
        return len(self.response_ids)

    def prompt_of(self, index: int) -> Prompt:
        return self.prompts[index // self.samples_per_prompt]

    @property
    def lengths(self) -> torch.Tensor:
        return torch.tensor([len(r) for r in self.response_ids])

    def batch(self, indices: Sequence[int], *, packed: bool, pad_id: int) -> Batch:
        """Prompt + reply sequences; ``loss_mask`` marks the reply tokens (the ones scored)."""
        sequences = []
        for i in indices:
            prompt, reply = self.prompt_of(i).ids, self.response_ids[i]
            sequences.append((prompt + reply, [0] * len(prompt) + [1] * len(reply)))
        return pack(sequences) if packed else pad(sequences, pad_id)


def generate(
    policy: Any,
    tokenizer: Any,
    prompts: list[Prompt],
    *,
    cfg: RLFields,
    seed: int,
    samples_per_prompt: int = 1,
) -> Rollout:

    rollout = cfg.rollout
    generator = LocalGenerator(
        policy, tokenizer, batch_size=rollout.batch_size, chat_template=cfg.data.chat_template
    )
    params = GenerationParams(
        max_new_tokens=rollout.max_new_tokens,
        temperature=rollout.temperature,
        top_p=rollout.top_p,
        top_k=rollout.top_k,
        num_samples=samples_per_prompt,
        seed=seed,
    )
    generations = [g for samples in generator.generate_ids([p.ids for p in prompts], params) for g in samples]
    return Rollout(
        prompts=prompts,
        response_ids=[g.token_ids for g in generations],
        texts=[g.text for g in generations],
        stopped=torch.tensor([g.stopped for g in generations]),
        samples_per_prompt=samples_per_prompt,
    )


# ---------------------------------------------------------------------------------------------
# 5. Per-token forwards


@dataclass
class TokenOutputs:
    """Per reply token, flat (N,) in sequence order; ``lengths`` (S,) says how many belong to each."""

    logps: torch.Tensor
    entropy: torch.Tensor
    lengths: torch.Tensor
    values: torch.Tensor | None = None


def _logps_entropy(
    hidden: torch.Tensor, targets: torch.Tensor, head: Any, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    logits = head(hidden).float() / temperature
    return -F.cross_entropy(logits, targets, reduction="none"), entropy_from_logits(logits)


def token_forward(
    model: Any,
    batch: Batch,
    *,
    temperature: float,
    chunk_size: int,
    value_model: Any = None,
) -> TokenOutputs:
    """Log-probs (at ``temperature``, as sampled) and entropy of each reply token, optionally values.

    The hidden state at position t-1 predicts token t and is also the state V(s_t) is read from.
    Only reply positions are projected to the vocabulary, ``chunk_size`` rows at a time; with
    gradient, chunks are recomputed in backward instead of stored.
    """
    hidden = hidden_states(model, batch)
    predict_mask, next_ids = shifted_targets(batch.input_ids, batch.loss_mask)
    selected, targets = hidden[predict_mask], next_ids[predict_mask]
    head = lm_head(model)
    use_checkpoint = torch.is_grad_enabled() and selected.requires_grad and selected.shape[0] > chunk_size
    logps, entropy = [], []
    for start in range(0, selected.shape[0], chunk_size):
        args = (selected[start : start + chunk_size], targets[start : start + chunk_size], head, temperature)
        lp, ent = (
            checkpoint(_logps_entropy, *args, use_reentrant=False)
            if use_checkpoint
            else _logps_entropy(*args)
        )
        logps.append(lp)
        entropy.append(ent)
    lengths = torch.bincount(batch.seq_ids[predict_mask], minlength=batch.num_sequences)
    values = None if value_model is None else value_model.values(selected, batch, predict_mask)
    return TokenOutputs(
        logps=torch.cat(logps),
        lengths=lengths,
        entropy=torch.cat(entropy),
        values=values,
    )


def micro_forward(run: RLRun, rollout: Rollout, micro: list[int], *, values: bool = False) -> TokenOutputs:
    """``token_forward`` of the policy (with gradient) on the replies ``micro``, as the run samples them."""
    cfg = run.cfg
    batch = rollout.batch(micro, packed=cfg.train.packing, pad_id=run.pad_id).to(run.dist.device)
    return token_forward(
        run.policy,
        batch,
        temperature=cfg.rollout.temperature,
        chunk_size=cfg.train.loss_chunk_size,
        value_model=run.value_model if values else None,
    )


def to_rows(flat: torch.Tensor, lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Flat per-token values (N,) -> right-padded rows (S, width), zeros after each sequence's end."""
    out = flat.new_zeros((lengths.numel(), width))
    mask = torch.arange(width, device=flat.device)[None, :] < lengths.to(flat.device)[:, None]
    return out.masked_scatter(mask, flat)


def reply_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(S, width) float mask of reply tokens."""
    return (torch.arange(width)[None, :] < lengths[:, None]).float()


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
    temperature, chunk_size = run.cfg.rollout.temperature, run.cfg.train.loss_chunk_size
    was_training = run.trainable.training
    run.trainable.eval()
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
                out["entropy"].append(to_rows(result.entropy.cpu(), lengths, width))
            if values:
                out["old_values"].append(to_rows(result.values.cpu(), lengths, width))  # type: ignore[union-attr]
        if reference and run.reference is not None:
            ref = run.reference.logps(run.policy, batch, temperature=temperature, chunk_size=chunk_size)
            out["ref_logps"].append(to_rows(ref.cpu(), lengths, width))
    run.trainable.train(was_training)
    tensors = {key: torch.cat(rows) for key, rows in out.items() if rows}
    tensors["mask"] = reply_mask(rollout.lengths, width)
    return tensors


# ---------------------------------------------------------------------------------------------
# 6. The run: optimizer, scheduler, sampler, RNG, KL controller, checkpoints, update step


def _encode_rng(rng: torch.Generator) -> str:
    return base64.b64encode(bytes(rng.get_state().tolist())).decode()


def _decode_rng(rng: torch.Generator, text: str) -> None:
    rng.set_state(torch.tensor(list(base64.b64decode(text)), dtype=torch.uint8))


@dataclass
class RLRun:
    """The bookkeeping of one RL run; the recipes call ``update`` and ``end_step``."""

    cfg: RLFields
    dist: Distributed
    output_dir: Path
    config_hash: str
    trainable: Trainable
    reference: Reference | None
    tokenizer: Any
    prompts: list[Prompt]
    eval_prompts: list[Prompt]
    updates_per_step: int
    description: str
    kl_controller: Any = None
    state: LoopState = field(default_factory=LoopState)
    resumed_from: Path | None = None
    last_checkpoint: Path | None = None
    evals: list[dict[str, Any]] = field(default_factory=list)
    dropped_prompts: int = 0

    def __post_init__(self) -> None:
        train = self.cfg.train
        per_step = self.cfg.rollout.prompts_per_step
        self.total_steps = train.max_steps or max(1, math.ceil(train.epochs * len(self.prompts) / per_step))
        self.optimizer = build_optimizer(self.trainable, train)
        self.scheduler = build_scheduler(self.optimizer, train, self.total_steps * self.updates_per_step)
        self.sampler = ResumableSampler(
            len(self.prompts), seed=train.seed, rank=self.dist.rank, world_size=self.dist.world_size
        )
        self.rng = torch.Generator().manual_seed(train.seed)  # rollout seeds and mini-batch order
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.params = [p for p in self.trainable.parameters() if p.requires_grad]
        self.trainable.train()  # from_pretrained returns eval mode; gradient checkpointing needs train mode
        self._restore()
        self.metrics = MetricsWriter(
            self.output_dir / "metrics.jsonl",
            enabled=self.dist.is_main,
            resume_step=self.state.step if self.resumed_from else None,
        )
        self.progress = Progress(
            self.total_steps, self.state.step, enabled=self.dist.is_main, description=self.description
        )

    @property
    def policy(self) -> Any:
        return self.trainable.policy

    @property
    def value_model(self) -> Any:
        return self.trainable.value_model

    # -- checkpoints ---------------------------------------------------------------------------

    def _restore(self) -> None:
        folder = find_resume_checkpoint(self.output_dir, self.cfg.resume)
        if folder is None:
            return
        self.state, sampler_state, saved_hash = load_checkpoint(
            folder, model=self.trainable, optimizer=self.optimizer, scheduler=self.scheduler
        )
        try:
            self.sampler.load_state_dict(sampler_state)
        except ValueError as exc:
            raise CheckpointError(str(exc), source=str(folder), field="resume") from None
        if saved_hash and saved_hash != self.config_hash:
            log.warning("resuming from %s, written with a different config", folder)
        _decode_rng(self.rng, self.state.extra["rollout_rng"])
        if self.kl_controller is not None:
            self.kl_controller.load_state_dict(self.state.extra["kl_controller"])
        self.resumed_from = self.last_checkpoint = folder
        if self.dist.is_main:
            print(f"resumed from {folder} at step {self.state.step}", flush=True)

    def checkpoint(self) -> Path:
        folder = self.output_dir / "checkpoints" / f"step-{self.state.step:06d}"
        if self.dist.is_main:
            self.state.extra = {"rollout_rng": _encode_rng(self.rng)}
            if self.kl_controller is not None:
                self.state.extra["kl_controller"] = self.kl_controller.state_dict()
            save_checkpoint(
                folder,
                trainable=trainable_state(self.trainable),
                optimizer_state=self.optimizer.state_dict(),
                scheduler=self.scheduler,
                sampler_state=self.sampler.state_dict(),
                loop_state=self.state,
                config_hash=self.config_hash,
            )
            prune_checkpoints(self.output_dir / "checkpoints", self.cfg.train.keep_last)
        self.dist.barrier()
        self.last_checkpoint = folder
        return folder

    # -- one rollout step ------------------------------------------------------------------------

    def next_prompts(self) -> tuple[list[Prompt], int]:
        """This process's prompts for the step, and the step's sampling seed (distinct per process)."""
        indices, _ = self.sampler.take(self.cfg.rollout.prompts_per_step // self.dist.world_size)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.rng)) + self.dist.rank
        return [self.prompts[i] for i in indices], seed

    def mini_batches(self, count: int) -> list[list[int]]:
        """A fresh shuffle of ``count`` replies, cut into mini-batches of batch_size x grad_accum."""
        size = self.cfg.train.batch_size * self.cfg.train.grad_accum
        order = torch.randperm(count, generator=self.rng).tolist()
        return [order[s : s + size] for s in range(0, count, size)]

    def train_on(
        self,
        rollout: Rollout,
        micro_loss: Callable[[list[int]], tuple[torch.Tensor, dict[str, float]]],
        *,
        passes: int,
    ) -> tuple[dict[str, float], float]:
        """``passes`` shuffled passes of ``update`` over the rollout's mini-batches.

        Returns each update metric's mean over the updates, and how many updates were skipped
        (non-finite), counted in this process.
        """
        updates = [
            self.update(indices, rollout.lengths, micro_loss)
            for _ in range(passes)
            for indices in self.mini_batches(len(rollout))
        ]
        means = {key: sum(u[key] for u in updates) / len(updates) for key in updates[0] if key != "skipped"}
        return means, sum(u["skipped"] for u in updates)

    def update(
        self,
        indices: list[int],
        lengths: torch.Tensor,
        micro_loss: Callable[[list[int]], tuple[torch.Tensor, dict[str, float]]],
    ) -> dict[str, float]:
        """One optimizer step on the replies ``indices``; returns its metrics (token-weighted means).

        ``micro_loss`` returns a token-mean loss over its micro-batch; weighting each by its share of
        the mini-batch's reply tokens (over all processes) and summing gradients over processes gives
        the token mean of the whole mini-batch, whatever the micro-batch size or process count.
        """
        size = self.cfg.train.batch_size
        micro_batches = [indices[s : s + size] for s in range(0, len(indices), size)]
        total_tokens = self.dist.all_sum(float(lengths[indices].sum()))
        loss_sum, sums = 0.0, dict[str, float]()
        for micro in micro_batches:
            weight = float(lengths[micro].sum()) / max(total_tokens, 1.0)
            loss, metrics = micro_loss(micro)
            (loss * weight).backward()
            loss_sum += float(loss.detach()) * weight
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + value * weight
        loss_sum = self.dist.all_sum(loss_sum)
        if self.dist.world_size > 1:
            for p in self.params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                torch.distributed.all_reduce(p.grad)
        if self.state.step + 1 in self.cfg.train.inject_nonfinite_at and self._updates_this_step == 0:
            loss_sum = float("nan")  # testing aid: the first update of these steps
        self._updates_this_step += 1
        max_norm = self.cfg.train.max_grad_norm if self.cfg.train.max_grad_norm > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        finite = math.isfinite(loss_sum) and bool(torch.isfinite(grad_norm))
        if finite:
            self.optimizer.step()
            self.scheduler.step()
            self.state.optimizer_steps += 1
        else:
            self._skip(indices, loss_sum, float(grad_norm))
        self.optimizer.zero_grad(set_to_none=True)
        # Weights are shares of the global token count: summed over processes, the sums are the means.
        result = {k: self.dist.all_sum(v) for k, v in sums.items()}
        return {**result, "loss": loss_sum, "grad_norm": float(grad_norm), "skipped": float(not finite)}

    def _skip(self, indices: list[int], loss: float, grad_norm: float) -> None:
        """The non-finite guard: no optimizer or scheduler update; counted; abort past the limit."""
        self.state.nonfinite_steps += 1
        names = sorted({self._current[i // self._samples].name for i in indices})
        self.metrics.write(
            {
                "kind": "nonfinite",
                "step": self.state.step + 1,
                "loss": loss,
                "grad_norm": grad_norm,
                "records": names,
            }
        )
        log.warning(
            "step %d: non-finite loss/grad norm (loss=%s, grad_norm=%s); update skipped. Prompts: %s",
            self.state.step + 1,
            loss,
            grad_norm,
            ", ".join(names[:8]),
        )
        if self.state.nonfinite_steps > self.cfg.train.max_nonfinite_steps:
            raise NonFiniteAbort(
                f"{self.state.nonfinite_steps} non-finite updates (limit train.max_nonfinite_steps="
                f"{self.cfg.train.max_nonfinite_steps}); last at step {self.state.step + 1}, prompts "
                f"{', '.join(names[:4])}",
                field="train.max_nonfinite_steps",
            )

    def begin_step(self, rollout: Rollout) -> None:
        """Remembers the step's rollout (to name its prompts if an update goes non-finite)."""
        self._current = rollout.prompts
        self._samples = rollout.samples_per_prompt
        self._updates_this_step = 0

    def end_step(self, record: dict[str, Any], evaluate: Callable[[], dict[str, float]] | None) -> bool:
        """Logs, evaluates, checkpoints; returns True when the run is over."""
        self.state.step += 1
        record = {"kind": "train", "step": self.state.step, "lr": self.scheduler.get_last_lr()[0], **record}
        if self.state.step % self.cfg.train.log_every == 0:
            self.metrics.write(record)
        kl = record.get("kl", record.get("kl_k3_token"))
        info = f"reward {record['reward']:.3f}" + ("" if kl is None else f" kl {kl:.3f}")
        self.progress.update(self.state.step, info)
        done = self.state.step >= self.total_steps
        every = self.cfg.train.eval_every
        if evaluate is not None and self.eval_prompts and (done or (every and self.state.step % every == 0)):
            self.write_eval(evaluate())
        save_every = self.cfg.train.save_every
        if done or (save_every and self.state.step % save_every == 0):
            self.checkpoint()
        return done

    def write_eval(self, result: dict[str, float]) -> None:
        record = {"kind": "eval", "step": self.state.step, **result}
        self.evals.append(record)
        self.metrics.write(record)

    def process_mean(self, record: dict[str, float]) -> dict[str, float]:
        """Each value averaged over processes (the identity in one process)."""
        if self.dist.world_size == 1:
            return record
        return {key: self.dist.all_sum(value) / self.dist.world_size for key, value in record.items()}

    def close(self) -> None:
        self.progress.close()
        self.metrics.close()


class PhaseClock:
    """Seconds per phase of a rollout step: ``mark(phase)`` ends a phase (``time.perf_counter``).

    The phases, in order: generate, reward, logprobs, train.
    """

    PHASES = ("generate", "reward", "logprobs", "train")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ends: dict[str, float] = {}

    def mark(self, phase: str) -> None:
        self.ends[phase] = time.perf_counter()

    def timings(self, device: torch.device) -> dict[str, float]:
        """``time_<phase>_s`` for each phase, the step's total and the peak memory so far."""
        marks = [self.started, *(self.ends[phase] for phase in self.PHASES)]
        spans = {f"time_{phase}_s": end - begin for phase, begin, end in zip(self.PHASES, marks[:-1], marks[1:], strict=True)}
        return {**spans, "step_time_s": marks[-1] - self.started, "peak_mem_mb": peak_memory_mb(device)}


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
class RLResult:
    state: LoopState
    last_checkpoint: Path | None
    evals: list[dict[str, Any]]
    output: Path | None


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
) -> tuple[RLRun, RewardSource, Any]:
    """Loads policy, reference, value model, reward source and prompts; restores a checkpoint."""

    torch.manual_seed(cfg.train.seed)
    dist = setup_distributed(resolve_device(cfg.device))
    check_config(
        cfg, sequences_per_step=cfg.rollout.prompts_per_step * samples_per_prompt, world_size=dist.world_size
    )
    source = make_reward_source(
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
    ref = Reference(policy, lora=cfg.finetune == "lora") if reference else None
    values = make_value_model(cfg, policy, dist) if value_model else None
    output_dir = Path(cfg.output_dir)
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
    if run.dist.is_main and (stop_after_step is None or run.state.step >= run.total_steps):
        output = save_policy(cfg, run.policy, run.tokenizer, run.output_dir)
        manifest = {
            "kind": kind,
            "config_hash": run.config_hash,
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


# ---------------------------------------------------------------------------------------------
# 7. Held-out evaluation


@torch.no_grad()
def evaluate(run: RLRun, source: RewardSource, *, samples_per_prompt: int = 1) -> dict[str, float]:
    """Mean reward, stop share, length and KL to the reference of fixed-seed samples on held-out prompts.

    KL is the per-reply sum of k1 = log π - log π_ref over the sampled tokens (mean over replies; an
    unbiased estimate of KL(π‖π_ref) per reply), plus the token-mean k3 (always >= 0).
    """
    started = time.perf_counter()
    prompts = run.eval_prompts[run.dist.rank :: run.dist.world_size]
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
