"""What the user reads stays true: the table of trial parameters is generated from the code,
and the README's example ``sfxflow_beamtime`` is accepted by the code that reads it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from kernels.__main__ import main as cli
from kernels.stages.params_table import markdown, parameter_rows
from kernels.stages.pipeline import PARAM_INFO, ParamsError, ProcessingParams
from operators.pipeline.beamtime import Beamtime

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "trial-parameters.md"


def test_committed_doc_equals_the_generated_one():
    assert DOC.read_text() == markdown(), (
        "docs/trial-parameters.md is stale: run python -m kernels params --out "
        "docs/trial-parameters.md"
    )


def test_every_parameter_and_only_those_is_described():
    defaults = ProcessingParams()
    fields = {
        (s.name, k.name)
        for s in dataclasses.fields(ProcessingParams)
        for k in dataclasses.fields(getattr(defaults, s.name))
    }
    described = {(section, key) for section, keys in PARAM_INFO.items() for key in keys}
    assert fields == described
    assert {(r["section"], r["key"]) for r in parameter_rows()} == fields


def test_row_shows_default_and_range():
    row = next(r for r in parameter_rows() if r["key"] == "min_indexed_fraction")
    assert (row["section"], row["default"], row["range"]) == ("indexing", 0.4, "0 to 1")
    assert (
        "| hitfinder | `min_spots` | a frame with at least this many spots is a hit | `15` |"
        in (markdown())
    )


@pytest.mark.parametrize(
    "params, words",
    [
        (
            {"indexing": {"min_indexed_fraction": 1.5}},
            "indexing.min_indexed_fraction must be at most 1",
        ),
        ({"spotfinder": {"window": 0}}, "spotfinder.window must be at least 1"),
        ({"crystal": {"alpha": 181.0}}, "crystal.alpha must be at most 180"),
    ],
)
def test_values_out_of_the_documented_range_are_refused(params, words):
    with pytest.raises(ParamsError, match=words):
        ProcessingParams.from_dict(params)


def test_params_command_prints_the_table(capsys):
    assert cli(["params"]) == 0
    assert capsys.readouterr().out == markdown()


def test_readme_example_beamtime_is_accepted():
    (example,) = re.findall(r"```json\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    settings = json.loads(example)
    beamtime = Beamtime.from_dict(settings)
    assert dataclasses.asdict(beamtime) | settings == dataclasses.asdict(beamtime)
    ProcessingParams.from_dict(beamtime.trial_params)
