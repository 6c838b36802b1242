"""FSDP2 (``train.parallel=fsdp``): two gloo processes on CPU train like one process with accumulation,
a sharded checkpoint resumes exactly, exports hold full weights; the config refuses what cannot shard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from alignkit.config.base import load_config
from alignkit.errors import ConfigError
from alignkit.training.parallel import decoder_layers, optimizer_state_by_index, optimizer_state_by_name
from tests.helpers.data import write_data
from tests.helpers.rl import check_two_processes_match_one, metrics, rl_args, run_rl_driver
from tests.recipes.test_sft_resume import assert_same_last_weights, last_weights, run_driver

TORCHRUN = Path(sys.executable).parent / "torchrun"
needs_torchrun = pytest.mark.skipif(not TORCHRUN.exists() and shutil.which("torchrun") is None,
                                    reason="torchrun not found")


def two_processes(port: int) -> list[str]:
    return [str(TORCHRUN), "--nproc_per_node", "2", "--master_port", str(port)]


def common_args(tmp_path: Path, *extra: str) -> list[str]:
    data = write_data(tmp_path / "data.jsonl")
    return ["model=tiny-random", f"data.train={data}", "train.batch_size=2", "train.max_steps=6",
            "train.save_every=3", "device=cpu", *extra]


def train_losses(out: Path) -> list[float]:
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [x["loss"] for x in lines if x["kind"] == "train"]


@needs_torchrun
def test_fsdp_two_processes_match_one_process_with_accumulation(tmp_path: Path) -> None:
    """Full fine-tuning: the tied embedding/head lives in the sharded root unit and is trained too."""
    # adam_eps 1e-6: with the default 1e-8, a weight whose gradient is ~1e-8 moves by about lr times the
    # sign of a sum whose order differs between 1 and 2 processes (measured: 1.2e-5 apart on one
    # o_proj weight after 6 steps, with every loss equal to 1e-6); at 1e-6 they agree to 1.1e-6.
    args = common_args(tmp_path, "finetune=full", "train.lr=1e-3", "train.adam_eps=1e-6")
    one = run_driver([*args, f"out={tmp_path / 'one'}", "train.grad_accum=2"])
    assert one.returncode == 0, one.stderr[-2000:]
    two = run_driver([*args, f"out={tmp_path / 'two'}", "train.parallel=fsdp"], env={"OMP_NUM_THREADS": "1"},
                     launcher=two_processes(29541))
    assert two.returncode == 0, two.stderr[-3000:]

    one_losses, two_losses = train_losses(tmp_path / "one"), train_losses(tmp_path / "two")
    assert len(one_losses) == len(two_losses) == 6
    for x, y in zip(one_losses, two_losses, strict=True):
        assert abs(x - y) < 1e-5
    # The checkpoint holds full tensors, and the exported model is a plain one with the tie written once.
    for name, weights in [("checkpoint", (last_weights(tmp_path / "one"), last_weights(tmp_path / "two"))),
                          ("export", tuple(load_file(str(tmp_path / out / "model" / "model.safetensors"))
                                           for out in ("one", "two")))]:
        expected, sharded = weights
        assert expected.keys() == sharded.keys(), name
        for key in expected:
            torch.testing.assert_close(sharded[key], expected[key], rtol=0, atol=1e-5, msg=f"{name} {key}")


LEAVES = """
import os, sys, torch
from pathlib import Path
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Replicate, Shard, distribute_tensor
from alignkit.training.distributed import leaves_its_group, setup_distributed

@leaves_its_group
def run():
    dist = setup_distributed(torch.device("cpu"))
    total = dist.all_sum(1.0)
    # A gather of a sharded tensor, as FSDP's export does: DTensor's caches keep the mesh, and with it the
    # group, after the call.
    mesh = init_device_mesh("cpu", (2,))
    full = distribute_tensor(torch.arange(8.0), mesh, [Shard(0)]).redistribute(mesh, [Replicate()]).to_local()
    # Work whose handle is dropped, as on the ranks that do not keep an export's result.
    gathered = torch.empty(2 * 4096)
    torch.distributed.all_gather_single(gathered, torch.full((4096,), float(dist.rank)), async_op=True)
    return dist.rank, total, float(full.sum())

rank, total, gathered_sum = run()
gloo_threads = [name for task in os.listdir("/proc/self/task")
                if "gloo" in (name := Path("/proc/self/task", task, "comm").read_text().strip())]
Path(sys.argv[1], f"rank-{rank}.txt").write_text(
    f"{total} {gathered_sum} {torch.distributed.is_initialized()} {gloo_threads}")
"""


@needs_torchrun
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="lists threads through /proc")
def test_a_run_that_joined_the_group_leaves_it_and_stops_its_threads(tmp_path: Path) -> None:
    """A gloo worker thread alive at interpreter shutdown aborts the process when it frees a tensor (SIGABRT,
    "terminate called without an active exception", seen on CI after finished FSDP runs). Destroying the
    group was not enough: a mesh kept it, and its threads, alive; without freeing it, both ranks report
    ['gloo_tcp_loop', 'pt_gloo_runloop', 'pt_gloo_runloop'] here."""
    script = tmp_path / "leave.py"
    script.write_text(LEAVES)
    result = subprocess.run([*two_processes(29544), str(script), str(tmp_path)],
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    # Each rank took part in the sum and the gather, then left the group, and no gloo thread is left.
    assert [(tmp_path / f"rank-{rank}.txt").read_text() for rank in (0, 1)] == ["2.0 28.0 False []"] * 2


def test_a_group_the_caller_made_is_left_to_the_caller(tmp_path: Path) -> None:
    """One in-process gloo group: a run that joins it leaves it; a run inside the caller's group does not."""
    from alignkit.training.distributed import leaves_its_group

    def join(name: str) -> None:
        torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / name}", rank=0, world_size=1)

    @leaves_its_group
    def joins_then_sums() -> float:
        if not torch.distributed.is_initialized():
            join("joined")
        total = torch.ones(1)
        torch.distributed.all_reduce(total)
        return float(total)

    assert joins_then_sums() == 1.0 and not torch.distributed.is_initialized()
    join("callers")
    try:
        assert joins_then_sums() == 1.0 and torch.distributed.is_initialized()
    finally:
        torch.distributed.destroy_process_group()


@needs_torchrun
def test_fsdp_checkpoint_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """LoRA: frozen base weights and trained factors share each sharded layer."""
    args = common_args(tmp_path, "finetune=lora", "lora.r=4", "train.lr=1e-2", "train.parallel=fsdp")
    straight = run_driver([*args, f"out={tmp_path / 'straight'}"], env={"OMP_NUM_THREADS": "1"},
                          launcher=two_processes(29542))
    assert straight.returncode == 0, straight.stderr[-3000:]
    # A run that stopped after its step-3 checkpoint: that checkpoint is all it left.
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(tmp_path / "straight" / "checkpoints" / "step-000003", resumed_dir / "checkpoints" / "step-000003")
    resumed = run_driver([*args, f"out={resumed_dir}"], env={"OMP_NUM_THREADS": "1"},
                         launcher=two_processes(29542))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and "step-000003" in resumed.stdout

    assert_same_last_weights(tmp_path / "straight", resumed_dir)
    a = last_weights(resumed_dir)
    assert train_losses(resumed_dir) == train_losses(tmp_path / "straight")[3:]
    adapter = load_file(str(resumed_dir / "adapter" / "adapter_model.safetensors"))
    assert len(adapter) == len(a) and all(tensor.abs().sum() > 0 for tensor in adapter.values())


@pytest.mark.skipif(not (Path(sys.executable).parent / "accelerate").exists(), reason="accelerate CLI not found")
def test_accelerate_launch_with_the_example_config_runs_fsdp(tmp_path: Path) -> None:
    """The shipped accelerate config starts 2 processes (gloo here) and selects train.parallel=fsdp."""
    config = Path(__file__).parents[2] / "examples" / "fsdp2" / "accelerate.yaml"
    out = tmp_path / "out"
    command = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file", str(config),
               "--main_process_port", "29543", "-m", "alignkit.cli", "sft",
               *common_args(tmp_path, "finetune=lora", "lora.r=4", "train.max_steps=2"), f"out={out}"]
    result = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("sft done") == 2  # one line per process
    assert "parallel: fsdp" in (out / "config.yaml").read_text()
    assert len(train_losses(out)) == 2


# --- PPO and GRPO: the trainable module (policy + value model) is the root unit ----------------------


def exported_weights(out: Path) -> dict[str, torch.Tensor]:
    folder = out / "adapter" if (out / "adapter").is_dir() else out / "model"
    name = "adapter_model.safetensors" if folder.name == "adapter" else "model.safetensors"
    return load_file(str(folder / name))


@needs_torchrun
def test_fsdp_ppo_two_processes_match_one_process(tmp_path: Path) -> None:
    """LoRA policy with a value head (both in the root unit), reference = the adapter disabled inside
    the root's forward; 3 held-out prompts split 2 + 1, so the processes run unequal numbers of sampling
    steps and no-grad forwards (on gathered weights: a per-layer all-gather there would hang)."""
    held_out = tmp_path / "held_out.jsonl"
    held_out.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ("Say yes.", "Count to three.", "Hi!")))
    args = rl_args(tmp_path, "x", "train.lr=2e-3", "train.max_steps=2", "ppo.epochs=2", "train.batch_size=4",
                   f"data.eval={held_out}", "train.eval_every=1")
    args = [a for a in args if not a.startswith("out=")]
    check_two_processes_match_one(
        tmp_path, "ppo", args, ["train.grad_accum=1", "train.parallel=fsdp"], ["train.grad_accum=2"], port=29545,
        compared=("reward", "kl", "advantages_mean", "advantages_std", "loss", "policy_loss", "value_loss",
                  "clip_fraction", "approx_kl", "grad_norm"),
    )  # fmt: skip
    assert len(metrics(tmp_path / "two", "eval")) == 3  # before the first step, then after each
    one, two = exported_weights(tmp_path / "one"), exported_weights(tmp_path / "two")
    assert one.keys() == two.keys() and one
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-5, rtol=0, msg=key)


@needs_torchrun
def test_fsdp_grpo_full_fine_tuning_resumed_matches_one_process(tmp_path: Path) -> None:
    """Full fine-tuning (the tied embedding/head sharded in the root unit, a frozen reference copy on
    each process), 2 groups per process, μ = 2, β = 0.04. The 2-process run ends after step 1 and resumes
    from that sharded checkpoint (weights and AdamW state); it still ends where one
    uninterrupted process does, and the checkpoint and the export hold full tensors."""
    # adam_eps 1e-6: see test_fsdp_two_processes_match_one_process_with_accumulation.
    args = rl_args(tmp_path, "x", "rollout.prompts_per_step=4", "grpo.group_size=4", "finetune=full",
                   "train.lr=1e-4", "train.adam_eps=1e-6", "train.max_steps=2", "grpo.iterations=2",
                   "grpo.beta=0.04", "train.batch_size=4", "train.save_every=1")
    args = [a for a in args if not a.startswith("out=")]
    sharded = ["train.grad_accum=2", "train.parallel=fsdp"]
    first = run_rl_driver("grpo", [*args, f"out={tmp_path / 'two'}", *sharded, "train.max_steps=1"], port=29546)
    assert first.returncode == 0, first.stderr[-3000:]
    assert [row["step"] for row in metrics(tmp_path / "two")] == [1]
    step_one = metrics(tmp_path / "two")[0]
    rows = check_two_processes_match_one(
        tmp_path, "grpo", args, sharded, ["train.grad_accum=4"], port=29547, compared=("reward", "loss", "policy_loss", "kl_k3_token", "entropy"),
    )  # fmt: skip
    assert [row["step"] for row in rows] == [1, 2]
    assert rows[0] == step_one  # kept from the first run, timings and all: the second one resumed at step 2
    # The norm of a full model's gradient (about 7), summed in another order: equal to 1e-5 relative.
    for row_one, row_two in zip(metrics(tmp_path / "one"), rows, strict=True):
        assert row_two["grad_norm"] == pytest.approx(row_one["grad_norm"], rel=1e-5)
    for name, (one, two) in [("checkpoint", (last_weights(tmp_path / "one"), last_weights(tmp_path / "two"))),
                             ("export", (exported_weights(tmp_path / "one"), exported_weights(tmp_path / "two")))]:
        assert one.keys() == two.keys() and one, name
        for key in one:
            torch.testing.assert_close(two[key], one[key], atol=1e-5, rtol=0, msg=f"{name} {key}")


# --- config: what cannot shard is refused before anything loads ------------------------------------


def test_fsdp_refusals() -> None:
    from alignkit.config.rl import GRPOConfig
    from alignkit.recipes.dpo import DPOConfig
    from alignkit.recipes.sft import SFTConfig

    with pytest.raises(ConfigError, match=r"train.compile=true is not supported with train.parallel=fsdp"):
        load_config(SFTConfig, None, ["train.parallel=fsdp", "train.compile=true"])
    for config in (SFTConfig, DPOConfig):
        with pytest.raises(ConfigError, match=r"finetune=qlora cannot be sharded with train.parallel=fsdp"):
            load_config(config, None, ["finetune=qlora", "train.parallel=fsdp"])
    assert load_config(GRPOConfig, None, ["train.parallel=fsdp"]).train.parallel == "fsdp"  # RL shards too
    assert load_config(SFTConfig, None, ["finetune=qlora"]).train.parallel == "ddp"


def test_accelerate_fsdp2_launch_selects_fsdp(monkeypatch: pytest.MonkeyPatch) -> None:
    """``accelerate launch --config_file examples/fsdp2/accelerate.yaml`` exports these variables."""
    from alignkit.recipes.sft import SFTConfig

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "2")
    assert load_config(SFTConfig, None, []).train.parallel == "fsdp"
    assert load_config(SFTConfig, None, ["train.parallel=ddp"]).train.parallel == "ddp"  # explicit wins
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(ConfigError, match="FSDP2 only"):
        load_config(SFTConfig, None, [])
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    assert load_config(SFTConfig, None, []).train.parallel == "ddp"


# --- pieces -----------------------------------------------------------------------------------------


def test_decoder_layers_are_found_under_peft_and_a_reward_head(tiny_model) -> None:
    from alignkit.config.training import LoraSection
    from alignkit.models.adapters import apply_lora
    from alignkit.models.reward_head import RewardModel

    lm = tiny_model.model
    blocks = list(lm.model.layers)
    assert len(blocks) == 2 and decoder_layers(lm) == blocks
    wrapped = RewardModel(apply_lora(lm, LoraSection(r=4)))
    assert decoder_layers(wrapped) == blocks


def test_optimizer_state_layouts_round_trip() -> None:
    """The checkpoint file keeps ``optimizer.state_dict()``'s numbering, whatever process layout wrote it."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    optimizer = torch.optim.AdamW([{"params": [model[0].weight, model[1].weight]},
                                   {"params": [model[0].bias], "weight_decay": 0.0}])
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    by_index = optimizer.state_dict()
    names = ["0.weight", "1.weight", "0.bias"]
    by_name = optimizer_state_by_name(by_index, names)
    assert [group["params"] for group in by_name["param_groups"]] == [["0.weight", "1.weight"], ["0.bias"]]
    assert by_name["state"]["0.bias"] is by_index["state"][2]
    assert optimizer_state_by_index(by_name) == by_index
