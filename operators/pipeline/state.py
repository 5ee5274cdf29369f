"""One pipeline state per run and trial, in the words the dashboard and the console show.

The orchestration records a stored state as each step of ``sfx_run`` starts, fails or
publishes (results DB ``pipeline_states``); the words combine it with the images logged so far:
waiting → transferring → processing n/N → merging → published, or failed: reason; a live run
is "acquiring, processing n/N so far" (N: its chunks closed so far) until its run marker.
"""

from __future__ import annotations

WAITING, TRANSFERRING, PROCESSING, MERGING = "waiting", "transferring", "processing", "merging"
PUBLISHED, FAILED = "published", "failed"
ACQUIRING, STALLED = "acquiring", "stalled"  # live runs: chunks move while the DAQ writes
# the stored state while each task of sfx_run runs ("prepare" records "waiting" itself, with the
# run's image count, once run and trial are registered)
TASK_STATES = {
    "wait_for_facility": WAITING,
    "transfer": TRANSFERRING,
    "process": PROCESSING,
    "merge": MERGING,
    "download": MERGING,
    "publish": MERGING,
    # sfx_live_run: the job is submitted at run start; chunks follow the DAQ
    "submit_live_job": WAITING,
    "follow_chunks": ACQUIRING,
    "wait_for_job": PROCESSING,
}
NOT_STARTED = "not processed with this trial"
NOTE_KEY = "run_note"  # XCom key of the one-line note a finished sfx_run DAG run gets


def failure_reason(error: BaseException | str | None) -> str:
    """The one-line reason of a failure: the first non-empty line of its message."""
    text = str(error or "").strip()
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line or (type(error).__name__ if isinstance(error, BaseException) else "unknown")


def state_words(record: dict | None, images: int) -> str:
    """What to say about one run and trial.

    Parameters
    ----------
    record : dict or None
        The stored state (``state``, ``detail``, ``total``), None if the trial never touched the run.
    images : int
        Images of the run logged so far for the trial.
    """
    if record is None:
        return NOT_STARTED
    state = record["state"]
    if state == FAILED:
        return f"{FAILED}: {record.get('detail') or 'unknown reason'}"
    if state in (STALLED, PUBLISHED) and record.get("detail"):
        return f"{state} ({record['detail']})"
    total = record.get("total")
    if state == PROCESSING:
        return f"{PROCESSING} {images}/{total}" if total else f"{PROCESSING} {images}"
    if state == ACQUIRING and total:  # a live run: its job processes the chunks closed so far
        return f"{ACQUIRING}, {PROCESSING} {images}/{total} so far"
    return state
