"""Predictable scaling of value-based RL: run tables, crossing times, fitted laws, compute, budgets.

Reads run tables (returns vs env steps per configuration and seed), fits the published laws (batch size, learning
rate and data as functions of the UTD σ and critic size N), and recommends settings for a compute budget. Nothing
here imports the runtime: a sweep starts training runs as separate processes.

Names are imported lazily: training writes run tables through ``runtable`` (numpy only), and the fitting modules'
scipy and matplotlib load only when a fit or a plot needs them (``pip install 'parallel-rl[scaling]'``).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "budget": ("FitsError", "budget_table", "load_fits", "validate_fits"),
    "compute": ("budget_optimum", "compute_to_threshold", "fit_sigma_of_budget", "flops_per_param_sample",
                "mlp_param_count", "pareto_mask"),
    "crossing": ("bootstrap_crossings", "crossing_table", "isotonic_increasing", "paper_thresholds"),
    "datalaw": ("DataLaw", "DataLawSigmaN", "PowerLawWithConstant", "fit_data_law", "fit_data_law_sigma_n",
                "fit_data_law_sigma_n_shared", "fit_power_law_with_constant"),
    "fit": ("METHODS", "fit_laws", "load_rows"),
    "hyperparams": ("SharedPowerLaw", "averaged_argmins", "bootstrap_argmins", "fit_batch_law_sigma_n",
                    "fit_shared_power_law"),
    "importers": ("SourceError", "import_csv", "import_qscaled", "import_tensorboard", "import_wandb_csv"),
    "recommend": ("recommend", "recommend_sigma_n"),
    "runtable": ("REQUIRED_COLUMNS", "RUN_TABLE_COLUMNS", "RunTableError", "read_run_table", "rows_from_run_dir",
                 "write_run_dir_table", "write_run_table"),
    "sweep": ("SweepCell", "grid_cells", "run_sweep"),
}  # fmt: skip
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'parallel_rl.scaling' has no attribute {name!r}")
    return getattr(importlib.import_module(f"parallel_rl.scaling.{_WHERE[name]}"), name)
