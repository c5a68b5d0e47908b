"""Multi-rank training on CPU with the gloo backend and 2 processes: identical parameters on every rank after
training, 2N transitions per step for 2 ranks x N envs, different env shards, identical normalizers."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from parallel_rl.algos import ALGORITHMS

NUM_ENVS, ITERATIONS = 3, 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str, mode: str, algo: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})  # fmt: skip
    torch.set_num_threads(1)
    import tasks
    from parallel_rl.runtime import Trainer
    from tests.conftest import tiny_config

    cfg = tiny_config(algo=algo, num_envs=NUM_ENVS, total_env_steps=world * NUM_ENVS * ITERATIONS,
                      run_dir=out_dir + "/run", schedule={"mode": mode, "utd": 1, "policy_ratio": 0.5})  # fmt: skip
    trainer = Trainer(cfg, tasks.env_factory("pendulum"))
    summary = trainer.run()
    state = {f"{name}.{k}": v for name, net in trainer.algo.networks().items() for k, v in net.state_dict().items()}
    state.update({f"norm.{k}": v for k, v in trainer.algo.deployed_modules()[0].state_dict().items()})
    torch.save({"state": state, "summary": summary, "transitions": trainer.buffer.num_transitions,
                "first_obs": trainer.buffer.obs[:, 0].clone()}, f"{out_dir}/rank{rank}.pt")  # fmt: skip
    torch.distributed.destroy_process_group()


# DAC, DEA and VPL (issue 15) are left out for the suite's time budget (two spawned ranks per case); they all-reduce
# their extra scalars' gradients like the networks', checked by hand with this test when they were added.
@pytest.mark.parametrize("algo", [a for a in ALGORITHMS if a not in ("dac", "dea", "vpl")])
@pytest.mark.parametrize("mode", ["sequential", "pipelined"])
def test_two_ranks_stay_identical_and_double_the_data(tmp_path, mode, algo):
    mp.start_processes(_worker, args=(2, _free_port(), str(tmp_path), mode, algo), nprocs=2, start_method="spawn")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["state"].keys() == r1["state"].keys()
    for key in r0["state"]:
        assert torch.equal(r0["state"][key], r1["state"][key]), key
    # each rank stored N transitions per step; the run took 2N per step in total
    assert r0["transitions"] == r1["transitions"] == NUM_ENVS * ITERATIONS
    assert r0["summary"]["env_steps"] == 2 * NUM_ENVS * ITERATIONS
    assert r0["summary"]["vector_env_steps"] == ITERATIONS
    # different env shards (seeds offset by rank), yet one normalizer fed by both: its count covers 2N per step
    assert not torch.equal(r0["first_obs"], r1["first_obs"])
    assert r0["state"]["norm.count"].item() == 2 * NUM_ENVS * ITERATIONS
    # training changed the parameters (the equality above is not that of untouched initial weights)
    assert r0["summary"]["critic_updates"] > 0 and r0["summary"]["policy_updates"] > 0
    # rank 0 alone wrote the run directory
    assert (tmp_path / "run" / "summary.json").exists() and "final_eval_return" in r0["summary"]
    assert "final_eval_return" not in r1["summary"]
