"""Thread defaults from the cores a process may use (cgroup quota files written here) and the network size; CPU
bf16 refused unless explicitly allowed."""

from __future__ import annotations

import warnings

import pytest

from parallel_rl.config import ConfigError, SpeedConfig, TrainConfig, replace_nested, validate
from parallel_rl.threads import (
    MULTITHREAD_MIN_MACS,
    cgroup_cpu_limit,
    child_env,
    child_threads,
    config_torch_threads,
    default_torch_threads,
    largest_matmul_macs,
)


def _cgroup(tmp_path, proc: str, files: dict[str, str]):
    (tmp_path / "proc").write_text(proc)
    for rel, text in files.items():
        path = tmp_path / "fs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return cgroup_cpu_limit(tmp_path / "fs", tmp_path / "proc")


def test_cgroup_v2_quota_of_the_process_cgroup(tmp_path):
    assert _cgroup(tmp_path, "0::/job/a\n", {"job/a/cpu.max": "150000 100000\n", "cpu.max": "max 100000\n"}) == 1.5


def test_cgroup_v2_without_quota_and_v1_quota(tmp_path):
    assert _cgroup(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"}) is None
    v1 = {"cpu,cpuacct/k/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/k/cpu.cfs_period_us": "100000\n"}
    assert _cgroup(tmp_path, "4:memory:/k\n3:cpu,cpuacct:/k\n", v1) == 0.5
    none = {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}
    assert _cgroup(tmp_path, "2:cpu:/\n", none) is None
    assert cgroup_cpu_limit(tmp_path / "missing", tmp_path / "missing") is None


def test_small_networks_get_one_thread_large_ones_every_whole_core():
    # 256 x 256 hidden layers at batch 256: 2**24 multiply-adds per matmul
    assert largest_matmul_macs(256, 256, [256], 101) == 256 * 256 * 256
    assert default_torch_threads(largest_matmul_macs(256, 256, [256], 101), cores=16) == 1
    big = largest_matmul_macs(4096, 1024, [512, 256], 101)  # FastTD3's critic at batch 4096
    assert big >= MULTITHREAD_MIN_MACS
    assert default_torch_threads(big, cores=8) == 8
    assert default_torch_threads(big, cores=2.5) == 2  # a fractional quota rounds down
    assert default_torch_threads(big, cores=0.5) == 1


def test_config_threads_default_and_explicit():
    assert config_torch_threads(TrainConfig(), cores=8) == 1  # the no-argument job
    large = replace_nested(
        TrainConfig(), {"agent": {"critic_hidden": (1024, 512, 256)}, "buffer": {"batch_size": 4096}}
    )
    assert config_torch_threads(large, cores=8) == 8
    assert config_torch_threads(replace_nested(large, {"torch_threads": 3}), cores=8) == 3


def test_children_share_the_cores_and_do_not_spin():
    assert child_threads(workers=3, cores=8) == 2 and child_threads(workers=16, cores=8) == 1
    env = child_env(2, base={"PATH": "/bin"})
    assert env == {"PATH": "/bin", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    assert child_env(1, base={"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice stays


def test_cpu_bf16_refused_without_native_bf16_unless_allowed_then_warned(monkeypatch):
    import parallel_rl.config as config

    cfg = TrainConfig(device="cpu", speed=SpeedConfig(bf16=True))
    monkeypatch.setattr(config, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(ConfigError, match=r"--bf16: .*no native bf16.*slower than float32.*--cpu-bf16"):
        validate(cfg)
    with pytest.warns(UserWarning, match=r"15x .* to 29x"):
        validate(TrainConfig(device="cpu", speed=SpeedConfig(bf16=True, cpu_bf16=True)))
    monkeypatch.setattr(config, "cpu_has_native_bf16", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate(cfg)  # native bf16 (measured faster than float32 here): accepted silently
    with pytest.raises(ConfigError, match="--torch-threads"):
        validate(TrainConfig(torch_threads=-1))
