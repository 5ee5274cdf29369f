"""What a reprocess request may say: known keys, valid trial parameters, runs that exist."""

from __future__ import annotations

import pytest

from operators.pipeline.reprocess import (
    ReprocessRequestError,
    check_conf_keys,
    runs_to_reprocess,
)
from operators.pipeline.trial_params import (
    PARAMETER_KEYS,
    parameter_keys_help,
    parameter_table,
    validated_trial_params,
)
from tests.operators.fake_runs import make_run


@pytest.fixture
def exp(tmp_path):
    make_run(tmp_path / "runs", 1, [10, 10])
    make_run(tmp_path / "runs", 2, [10, 10])
    make_run(tmp_path / "runs", 3, [10, 10], conclude=False)
    return tmp_path


def test_a_typo_in_a_conf_key_is_refused_naming_it():
    check_conf_keys({"trial": "t", "trial_params": {}, "runs": "1", "ranks": 2})
    with pytest.raises(ReprocessRequestError, match=r"unknown conf key\(s\) \['runz'\]"):
        check_conf_keys({"trial": "t", "runz": "1"})


def test_empty_runs_start_nothing_by_hand_and_all_needs_saying(exp):
    assert runs_to_reprocess(exp, "", manual=True) == []
    assert runs_to_reprocess(exp, None, manual=True) == []
    assert runs_to_reprocess(exp, "all", manual=True) == ["r0001", "r0002"]
    assert runs_to_reprocess(exp, "", manual=False) == ["r0001", "r0002"]  # the sweep
    assert runs_to_reprocess(exp, "2", manual=True) == ["r0002"]


def test_runs_that_do_not_exist_or_are_not_concluded_are_named_before_anything_starts(exp):
    with pytest.raises(ReprocessRequestError) as refused:
        runs_to_reprocess(exp, "1,3,99", manual=True)
    message = str(refused.value)
    assert f"run r0099 does not exist under {exp / 'runs'}" in message
    assert "run r0003 is not concluded yet" in message and "r0001" not in message
    with pytest.raises(ReprocessRequestError, match="bad run range.*'all'"):
        runs_to_reprocess(exp, "1-x", manual=True)


def test_trial_parameters_are_validated_and_their_keys_listed():
    assert validated_trial_params({"spotfinder": {"snr": 5}})["spotfinder"]["snr"] == 5.0
    with pytest.raises(ValueError, match="unknown spotfinder parameter"):
        validated_trial_params({"spotfinder": {"snr2": 5}})
    with pytest.raises(ValueError, match="must be a JSON object"):
        validated_trial_params("snr=5")
    rows = parameter_table()
    snr = next(r for r in rows if (r["section"], r["key"]) == ("spotfinder", "snr"))
    assert snr["default"] == 6.0 and snr["range"] == ">= 0"
    window = next(r for r in rows if r["key"] == "window")
    assert window["meaning"] == "edge of a spot's box (pixels; an even one is used as the next odd)"
    assert {r["section"] for r in rows} == {
        "spotfinder",
        "hitfinder",
        "crystal",
        "indexing",
        "refinement",
        "integration",
        "detector",
    }
    assert "spotfinder: snr, min_photons" in parameter_keys_help()
    assert PARAMETER_KEYS == parameter_keys_help()  # the UI help's constant never drifts
    assert "space_group" in parameter_keys_help()
