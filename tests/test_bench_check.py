"""``launch.bench --check``: the comparison logic on synthetic figures, the command's exit status, the same-process
timing helpers, and the bare matmul chain's FLOP count by hand."""

from __future__ import annotations

import json

import pytest

from launch import bench
from launch import bench_compare as bc

BASE = {"critic_update": 0.5, "sample_n1": 2.0, "train_iteration": 0.2}


def test_compare_passes_within_tolerance_and_fails_beyond():
    now = {"critic_update": 0.31, "sample_n1": 2.5, "train_iteration": 0.2, "new_figure": 9.0}
    verdicts = {v["figure"]: v for v in bc.compare(BASE, now, tolerance=0.4)}
    assert verdicts["critic_update"]["ok"] and verdicts["critic_update"]["change"] == pytest.approx(0.62)
    assert verdicts["sample_n1"]["ok"] and verdicts["train_iteration"]["ok"]  # faster, and unchanged
    assert verdicts["new_figure"]["ok"] and verdicts["new_figure"]["baseline"] is None
    slower = {**now, "critic_update": 0.29}  # 0.58 of the baseline: beyond 40%
    assert [v["figure"] for v in bc.compare(BASE, slower, 0.4) if not v["ok"]] == ["critic_update"]
    missing = {"critic_update": 0.5, "sample_n1": 2.0}
    assert [v["figure"] for v in bc.compare(BASE, missing, 0.4) if not v["ok"]] == ["train_iteration"]
    with pytest.raises(ValueError, match="--tolerance"):
        bc.compare(BASE, now, 1.0)


def test_ratios_cancel_a_machine_that_is_uniformly_slower():
    """Figures are ratios to references measured in the same rounds: a machine twice as slow in every round (or
    one round slowed by load) leaves them unchanged."""
    rates = {"fig": [10.0, 5.0, 10.0], "ref": [20.0, 10.0, 20.0]}
    assert bc.median_ratio(rates, "fig", "ref") == 0.5
    slow = {k: [x / 2 for x in v] for k, v in rates.items()}
    assert bc.median_ratio(slow, "fig", "ref") == 0.5


def test_check_command_exit_status(tmp_path, monkeypatch):
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"figures": BASE}))
    monkeypatch.setattr(bc, "measure_check", lambda rounds, seed: dict(BASE))
    assert bench.main(["--check", str(baseline)])["verdicts"]
    monkeypatch.setattr(bc, "measure_check", lambda rounds, seed: {**BASE, "sample_n1": 1.0})
    with pytest.raises(SystemExit) as e:
        bench.main(["--check", str(baseline)])
    assert e.value.code == 1
    with pytest.raises(SystemExit, match="--check: cannot read"):
        bench.main(["--check", str(tmp_path / "missing.json")])


def test_interleaved_times_every_function_each_round():
    calls = []
    rates = bc.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3, seconds=0)
    assert calls == ["a", "b"] + ["a", "b"] * 3  # one warm-up each, then one call per function per round
    assert all(len(r) == 3 and min(r) > 0 for r in rates.values())


def test_matmul_chain_flops_by_hand():
    # actor 2 -> 3 -> 1 at batch 4: 2*4*(2*3 + 3*1) = 72. Critic (2+1) -> 5 -> 2, 2 members: forward of target and
    # trained critics 2 * 2*2*4*(3*5 + 5*2) = 800; weight gradients 2*2*4*(3*5 + 5*2) = 400; input gradient of the
    # second layer only 2*2*4*(5*2) = 160.
    chain = bc.MatmulChain(2, 1, (5,), (3,), 2, batch=4)
    assert chain.flops == 72 + 800 + 400 + 160
    chain()


def test_policy_update_matmul_chain_flops_by_hand():
    # actor 2 -> 3 -> 1 at batch 4: forward 2*4*(2*3 + 3*1) = 72, weight gradients 72 again, input gradient of the
    # second layer 2*4*(1*3) = 24. Frozen critics (2+1) -> 5 -> 2, 2 members: forward 2*2*4*(3*5 + 5*2) = 400, input
    # gradients down to the action (every layer) 400 again.
    chain = bc.MatmulChain(2, 1, (5,), (3,), 2, batch=4, update="actor")
    assert chain.flops == 72 + 72 + 24 + 400 + 400
    chain()


def test_reference_commit_of_an_exported_tree(tmp_path):
    (tmp_path / "COMMIT").write_text("229ed59bbf43ea2f7a2d5d90d1076314839944d7\n")
    assert bc.reference_commit(tmp_path) == "229ed59bbf43ea2f7a2d5d90d1076314839944d7"
    assert bc.reference_commit(tmp_path / "missing") == "unknown"
    with pytest.raises(SystemExit, match="--reference: .* not a FastTD3 checkout"):
        bc.import_fasttd3(tmp_path)
