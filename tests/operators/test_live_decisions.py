"""The live path's small decisions: which job outcome is "stalled", the state words, the script."""

from operators.analysis_job import SfApiJobOperator
from operators.pipeline.beamtime import Beamtime
from operators.pipeline.live import split_events, stall_reason
from operators.pipeline.run import job_scripts
from operators.pipeline.state import state_words
from plugins.sfx_dashboard_app.run_view_data import run_state


def test_only_a_failed_job_with_an_accepted_exit_code_is_taken_as_stalled():
    job = SfApiJobOperator(
        task_id="wait_for_job", machine="m", script="", key="k", accept_exit_codes=(4,)
    ).step()
    assert job.accepted("FAILED", "4:0")
    assert not job.accepted("FAILED", "1:0") and not job.accepted("FAILED", "0:9")
    assert not job.accepted("TIMEOUT", "4:0") and not job.accepted("FAILED", "")


def test_a_stalled_run_says_why_and_a_published_one_too():
    reason = stall_reason("r0007", 120.0, 3)
    assert "r0007" in reason and "120 s" in reason and "after 3 chunks" in reason
    assert state_words({"state": "stalled", "detail": reason}, 0) == f"stalled ({reason})"
    assert state_words({"state": "published", "detail": ""}, 5) == "published"


def test_a_live_run_says_how_many_of_its_images_known_so_far_are_processed():
    acquiring = {"state": "acquiring", "detail": "", "total": 750}
    assert state_words(acquiring, 300) == "acquiring, processing 300/750 so far"
    assert state_words({"state": "acquiring", "total": None}, 300) == "acquiring"
    assert state_words({"state": "processing", "total": 1000}, 900) == "processing 900/1000"
    view = run_state(acquiring, None, False, last_image=99.0, now=100.0, images=300)
    assert view == {"state": "acquiring", "detail": "acquiring, processing 300/750 so far"}


def test_events_split_into_live_and_post_run_runs_once_each():
    events = [
        {"event": "started", "run_name": "r0002"},
        {"event": "concluded", "run_name": "r0002", "live": False},  # same batch: live
        {"event": "concluded", "run_name": "r0003", "live": True},
        {"run_name": "r0001"},  # an event of the format before live runs
        {"event": "started", "run_name": "r0002"},
    ]
    assert split_events(events) == (["r0002"], ["r0001"])


def test_the_live_job_script_follows_the_run_and_may_last_as_long():
    bt = Beamtime(live_timeout=45.0)
    live = job_scripts(bt, "r0001", "t1", {}, 2, live=True)["process_script"]
    post = job_scripts(bt, "r0001", "t1", {}, 2)["process_script"]
    assert "--live --live-timeout 45" in live and "--live" not in post
    assert "#SBATCH --time=12:00:00" in live and "#SBATCH --time=00:30:00" in post


def test_the_sweep_leaves_live_runs_to_their_own_pipeline(tmp_path):
    from operators.pipeline.live import without_live_runs
    from tests.operators.fake_runs import make_run, start_live_run

    runs = tmp_path / "runs"
    make_run(runs, 1, [10])
    start_live_run(runs, 2)
    assert without_live_runs(str(tmp_path), ["r0001", "r0002", "r0003"]) == ["r0001", "r0003"]
