"""The pipeline wing holds the DAGs' decisions as plain functions: importable without Airflow."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import operators.pipeline

REPO = Path(__file__).resolve().parents[3]


def test_pipeline_modules_import_no_airflow():
    modules = [
        f"operators.pipeline.{m.name}" for m in pkgutil.iter_modules(operators.pipeline.__path__)
    ]
    assert "operators.pipeline.run" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_checking_a_trials_parameters_loads_no_scipy():
    """Every run's ``prepare`` checks its trial's parameters: importing scipy for that cost
    ~1.1 s of its ~1.5 s on the loaded machine, on the path from run start to the first chunk."""
    code = (
        "import sys\n"
        "from operators.pipeline.run import validate_trial\n"
        "validate_trial('r0001', 't1', {'spotfinder': {'snr': 4.0}})\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
