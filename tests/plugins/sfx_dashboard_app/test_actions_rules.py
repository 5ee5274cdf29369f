"""The dashboard's change rules as pure functions: settings edits, reprocess conf, CSRF tokens."""

from __future__ import annotations

import json

import pytest

from operators.pipeline.beamtime import Beamtime
from plugins.sfx_dashboard_app.actions import (
    ActionError,
    reprocess_conf,
    run_numbers,
    settings_with_dataset,
    settings_with_default_trial,
    settings_without_dataset,
)
from plugins.sfx_dashboard_app.csrf import csrf_token

from .conftest import EVIL_DATASET, EVIL_TAG


def test_a_dataset_changes_only_the_datasets_of_the_settings():
    raw = json.dumps({"experiment": "cxi1", "ranks": 8, "datasets": {"old": ["a"]}})
    new = json.loads(settings_with_dataset(raw, "both", ["b", "a", "b"]))
    assert new == {"experiment": "cxi1", "ranks": 8, "datasets": {"old": ["a"], "both": ["a", "b"]}}
    unset = Beamtime.from_json(settings_with_dataset(None, "x", ["a"]))
    assert unset.datasets == {**Beamtime().datasets, "x": ["a"]}


def test_a_dataset_can_name_its_per_event_splits():
    raw = json.dumps({"datasets": {"old": ["a"]}})
    splits = ["laser_on", "delay_ns=0,500,2000"]
    new = Beamtime.from_json(settings_with_dataset(raw, "pp", ["a"], splits))
    assert new.dataset_splits == {"pp": splits} and new.datasets["pp"] == ["a"]
    again = json.loads(settings_with_dataset(new.to_json(), "pp", ["a"]))  # redefined: no splits
    assert again["dataset_splits"] == {}
    with pytest.raises(ActionError, match="would not be readable: .*'laser on' is not TAG"):
        settings_with_dataset(raw, "pp", ["a"], ["laser on"])


@pytest.mark.parametrize(
    ("raw", "name", "tags", "error"),
    [
        (None, EVIL_DATASET, ["a"], "invalid dataset name"),
        (None, "ok", [EVIL_TAG], "invalid tag name"),
        (None, "ok", [], "at least one tag"),
        ("{not json", "ok", ["a"], "is not JSON"),
        ("[1]", "ok", ["a"], "not a JSON object"),
        ('{"experimnt": "x"}', "ok", ["a"], "would not be readable: .*experimnt"),
    ],
)
def test_a_bad_dataset_is_refused_naming_why(raw, name, tags, error):
    with pytest.raises(ActionError, match=error):
        settings_with_dataset(raw, name, tags)


def test_deleting_a_dataset_keeps_every_other_setting():
    raw = json.dumps({"experiment": "cxi1", "ranks": 8, "datasets": {"old": ["a"], "b": ["b"]}})
    assert json.loads(settings_without_dataset(raw, "old")) == {
        "experiment": "cxi1",
        "ranks": 8,
        "datasets": {"b": ["b"]},
    }
    assert settings_without_dataset(raw, "nosuch") is None  # the settings never had it
    unset = Beamtime.from_json(settings_without_dataset(None, "lysozyme"))  # the default's
    assert unset.datasets == {}


def test_a_default_trial_sets_name_and_params_of_version_1_only():
    raw = json.dumps({"experiment": "cxi1", "trial": "old", "trial_params": {"x": 1}})
    trial = {"id": 7, "name": "setup1", "version": 1, "params": {"crystal": {"a": 79.1}}}
    new = Beamtime.from_json(settings_with_default_trial(raw, trial))
    assert (new.experiment, new.trial, new.trial_params) == ("cxi1", "setup1", trial["params"])
    with pytest.raises(ActionError, match="version 2 cannot be the default"):
        settings_with_default_trial(raw, {**trial, "version": 2})


def test_reprocess_conf_names_runs_by_number_and_checks_the_trial():
    params = {"spotfinder": {"snr": 5.0}}
    conf = reprocess_conf(["r0010", "r0002", "r0002"], "t2", params)
    assert conf == {"trial": "t2", "trial_params": params, "runs": "2,10"}
    assert run_numbers(["r10000", "r9999"]) == "9999,10000"
    for runs, trial, bad, error in (
        (["<b>"], "t2", params, "only runs named like r0001"),
        ([], "t2", params, "at least one run"),
        (["r0001"], "t 2", params, "invalid trial name"),
        (["r0001"], "t2", {"spotfinder": {"snrr": 1}}, "snrr"),
    ):
        with pytest.raises(ActionError, match=error):
            reprocess_conf(runs, trial, bad)


def test_csrf_tokens_belong_to_one_session():
    assert csrf_token("jwt-a") == csrf_token("jwt-a")
    assert csrf_token("jwt-a") != csrf_token("jwt-b")
    assert len(csrf_token("jwt-a")) == 64 and "jwt" not in csrf_token("jwt-a")


def test_a_variable_from_the_environment_is_not_edited_behind_its_back(
    tmp_path, auth_manager, monkeypatch
):
    """Airflow reads AIRFLOW_VAR_* before its DB: an edit through the REST API would be shadowed."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    from plugins.sfx_dashboard_app import create_app

    monkeypatch.setenv("AIRFLOW_VAR_SFXFLOW_BEAMTIME", json.dumps({"experiment": "cxi1"}))
    jwt = auth_manager.generate_jwt(SimpleAuthManagerUser(username="op", role="op"))
    client = TestClient(
        create_app(f"sqlite:///{tmp_path / 'results.db'}", "http://127.0.0.1:9"),
        base_url="http://127.0.0.1",
    )
    answer = client.post(
        "/actions/dataset",
        json={"experiment": "cxi1", "name": "ds", "tags": ["a"]},
        headers={
            "Authorization": f"Bearer {jwt}",
            "X-CSRF-Token": csrf_token(jwt),
            "Origin": "http://127.0.0.1",
        },
    )
    assert answer.status_code == 409, answer.text
    assert "AIRFLOW_VAR_SFXFLOW_BEAMTIME" in answer.json()["detail"]
