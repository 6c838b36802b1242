"""FSDP2 for the shared loop (``train.parallel=fsdp``): sharding, the global grad norm, and full state
dicts gathered for checkpoints and exports.

Each decoder layer is one FSDP unit: its weights are all-gathered just before it runs and freed after,
so a process holds one layer's full weights at a time plus its own shard of everything else
(gradients and optimizer state included). The loop's objective module is the root unit: it owns the
embeddings, final norm, LM head (and a reward head) and spans the whole loss computation, which calls
the trunk and the head separately.

Gradients are averaged over processes as under DDP, so the loop's loss scaling is the same (the PPO/GRPO
update, which sums gradients over processes, weights its micro-batches by the world size under FSDP). The RL ``Trainable``
(policy and value model) is a root unit too; sampling runs on gathered weights (``gathered``). A
checkpoint holds full (unsharded) tensors in the single-process layout: gathered on every rank, written
by rank 0, readable by any process layout.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor

from alignkit.errors import ConfigError

# Full tensors, moved to the CPU as they are gathered, kept on rank 0 only (the other ranks get {}).
_GATHER_TO_RANK0 = StateDictOptions(full_state_dict=True, cpu_offload=True)


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks of ``model``, under any wrapper (PEFT, a reward model).

    Found by the class names transformers lists in ``_no_split_modules`` (``LlamaDecoderLayer``, ...):
    the same blocks accelerate wraps with ``fsdp_transformer_layer_cls_to_wrap`` left unset.
    """
    block_names: set[str] = set()
    for module in model.modules():
        block_names.update(getattr(module, "_no_split_modules", None) or ())
    return [module for module in model.modules() if type(module).__name__ in block_names]


def shard_model(root: torch.nn.Module, model: torch.nn.Module, *, compute_dtype: torch.dtype | None) -> None:
    """Shards ``model`` (inside ``root``) in place: one FSDP unit per decoder layer, then ``root``.

    Must run before the optimizer is built: sharding replaces the parameters by DTensor shards.
    ``compute_dtype`` (bf16 where the loop autocasts) is the dtype layers are gathered and run in;
    gradients are still reduced in fp32 and the sharded weights stay fp32.
    """
    layers = decoder_layers(model)
    if not layers:
        raise ConfigError("train.parallel=fsdp found no decoder layers to shard (the model lists none in "
                          "_no_split_modules); use train.parallel=ddp", field="train.parallel")
    policy = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32 if compute_dtype else None)
    for index, layer in enumerate(layers):
        fully_shard(layer, mp_policy=policy, reshard_after_forward=_reshards_after_forward(index, len(layers)))
    fully_shard(root, mp_policy=policy)


def _reshards_after_forward(index: int, count: int) -> bool:
    """Whether layer ``index`` of ``count`` frees its gathered weights after its forward: all but the
    last, whose weights backward needs again at once (keeping them saves one all-gather)."""
    return index < count - 1


@contextlib.contextmanager
def gathered(root: torch.nn.Module, model: torch.nn.Module) -> Iterator[None]:
    """Every FSDP unit of ``root`` (sharded by ``shard_model(root, model)``) holds its full weights for
    the duration and keeps them across forwards; resharded at the end. Collective: every process enters
    and leaves together. The identity for an unsharded ``root``.

    Why: sampling runs one forward per new token, and processes stop at different lengths, so the
    per-layer all-gathers of a sharded forward would leave them waiting on each other for ever; the
    no-grad passes over a process's own share (unequal on held-out prompts) have the same problem.
    Gathered once, those forwards need no collective at all. The price is one full copy of the weights
    per process meanwhile, as for generation under FSDP or ZeRO-3 elsewhere.

    ``root``'s forward must run the callable it is given (``rl_run.Trainable``): FSDP takes the first
    module to run a forward as its root, so one runs through ``root`` before any layer runs alone.
    """
    units = [module for module in root.modules() if isinstance(module, FSDPModule)]
    if not units:
        yield
        return
    with torch.no_grad():
        root(lambda: None)
    for unit in units:
        unit.unshard()
        unit.set_reshard_after_forward(False, recurse=False)
    try:
        yield
    finally:
        layers = decoder_layers(model)
        for index, layer in enumerate(layers):
            layer.set_reshard_after_forward(_reshards_after_forward(index, len(layers)), recurse=False)  # type: ignore[operator]
        for unit in units:
            unit.reshard()


def is_sharded(model: torch.nn.Module) -> bool:
    return any(isinstance(module, FSDPModule) for module in model.modules())


def global_grad_norm(norm: torch.Tensor) -> torch.Tensor:
    """``clip_grad_norm_`` over sharded gradients returns the norm as a DTensor; its full value is the
    norm of the whole gradient (all processes), the one that was clipped against."""
    return norm.full_tensor() if isinstance(norm, DTensor) else norm


def all_reduce_gradients(params: list[torch.nn.Parameter], *, bucket_numel: int = 1 << 24) -> None:
    """Sums every parameter's gradient over the processes, a bucket of up to ``bucket_numel`` elements
    (of one dtype) per collective instead of one per parameter, as DDP does. A missing gradient counts
    as zeros (another process may have one). Elementwise the same sums as one all-reduce per tensor."""
    grads: list[torch.Tensor] = []
    for param in params:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        grads.append(param.grad)
    buckets: list[list[torch.Tensor]] = []
    size = 0
    for grad in grads:
        if not buckets or size + grad.numel() > bucket_numel or buckets[-1][0].dtype != grad.dtype:
            buckets.append([])
            size = 0
        buckets[-1].append(grad)
        size += grad.numel()
    for bucket in buckets:
        flat = torch.cat([grad.reshape(-1) for grad in bucket])
        torch.distributed.all_reduce(flat)
        offset = 0
        for grad in bucket:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()


def optimizer_param_names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The name of each parameter the optimizer updates, in its group order (``state_dict()`` numbering)."""
    name_of = {id(param): name for name, param in model.named_parameters()}
    return [name_of[id(param)] for group in optimizer.param_groups for param in group["params"]]


def optimizer_state_by_index(by_name: dict[str, Any]) -> dict[str, Any]:
    """``get_optimizer_state_dict``'s layout (parameters named) -> ``optimizer.state_dict()``'s (numbered
    in group order), so a checkpoint's optimizer file is the same whatever wrote it."""
    order = [name for group in by_name["param_groups"] for name in group["params"]]
    number = {name: index for index, name in enumerate(order)}
    return {
        "state": {number[name]: value for name, value in by_name["state"].items()},
        "param_groups": [{**group, "params": [number[name] for name in group["params"]]}
                         for group in by_name["param_groups"]],
    }


def optimizer_state_by_name(by_index: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The inverse of ``optimizer_state_by_index``; ``names`` from ``optimizer_param_names``."""
    return {
        "state": {names[index]: value for index, value in by_index["state"].items()},
        "param_groups": [{**group, "params": [names[index] for index in group["params"]]}
                         for group in by_index["param_groups"]],
    }


def gather_trainable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Collective (every rank calls it): rank 0 gets each trainable parameter, full, on the CPU, under its
    ``named_parameters`` name (as ``checkpoint.trainable_state``); the other ranks get {}."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    full: dict[str, Any] = get_model_state_dict(model, options=options)
    if not full:
        return {}
    return {name: full[name].contiguous() for name, param in model.named_parameters() if param.requires_grad}


def gather_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Collective: rank 0 gets the full optimizer state in ``optimizer.state_dict()`` layout, others {}."""
    if not optimizer.state:
        # No step taken yet (every step so far skipped as non-finite): nothing to gather, and torch would
        # initialise the state by a zero-gradient step, shifting AdamW's step count from a DDP run's.
        return optimizer.state_dict() if torch.distributed.get_rank() == 0 else {}
    by_name = get_optimizer_state_dict(model, optimizer, options=_GATHER_TO_RANK0)
    return optimizer_state_by_index(by_name) if by_name else {}


def load_sharded(model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, trainable: dict[str, torch.Tensor],
                 optimizer_state: dict[str, Any]) -> None:
    """Every rank passes the full checkpoint tensors and keeps its own shard of them."""
    # A shallow copy: torch may replace the values of the dict it is given.
    weights: dict[str, Any] = dict(trainable)
    set_model_state_dict(model, weights, options=StateDictOptions(full_state_dict=True, strict=False))
    if not optimizer_state["state"]:  # saved before any step: hyper-parameters only, as above
        optimizer.load_state_dict(optimizer_state)
        return
    by_name = optimizer_state_by_name(optimizer_state, optimizer_param_names(model, optimizer))
    set_optimizer_state_dict(model, optimizer, by_name, options=StateDictOptions(full_state_dict=True))


def gather_for_export(model: torch.nn.Module) -> dict[str, torch.Tensor] | None:
    """The weights ``save_pretrained`` writes, for a sharded ``model``: collective, full on rank 0 ({} on the
    others). None for an unsharded model, which saves its own weights.

    A PEFT model exports only its adapter, so frozen base weights are not gathered.
    """
    if not is_sharded(model):
        return None
    adapter_only = any(callable(getattr(module, "get_base_model", None)) for module in model.modules())
    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=adapter_only)
    full: dict[str, Any] = get_model_state_dict(model, options=options)
    return _retie(model, full)


def _retie(model: torch.nn.Module, full: dict[str, Any]) -> dict[str, Any]:
    """Tied weights (input and output embeddings) are gathered as two copies; pointing both names at one
    tensor lets ``save_pretrained`` see the tie and write it once, as it does for an unsharded model."""
    first_name: dict[int, str] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        first = first_name.setdefault(id(param), name)
        if first != name and first in full and name in full:
            full[name] = full[first]
    return full


def free_destroyed_groups() -> None:
    """Call after ``destroy_process_group``: frees the groups now, which joins gloo's worker threads.

    Why: a DeviceMesh keeps its groups in ``_pg_registry`` (read only while torch.compile traces; eager
    code finds groups by name, and destroy_process_group has removed the names), and DTensor's caches keep
    FSDP's meshes alive after the model is gone. So a destroyed group lived on, its worker threads with it,
    until Python shut down; a worker that frees a tensor then aborts the process ("terminate called
    without an active exception", SIGABRT, seen on CI after a finished FSDP run). Freeing the group runs
    its destructor, which waits for its queue and joins the workers (torch releases the GIL for it).
    """
    for candidate in gc.get_objects():
        # type(), not isinstance(): DeviceMesh's metaclass reads ``__class__``, which some of torch's own
        # objects answer with a deprecation warning.
        if DeviceMesh in type(candidate).__mro__ and isinstance(getattr(candidate, "_pg_registry", None), dict):
            candidate._pg_registry.clear()
    gc.collect()  # the groups' last references can sit in reference cycles
