"""Operator: run one batch job at the HPC center through the Superfacility API, exactly once.

Submission is idempotent: the job carries a key derived from the run, trial and step; a retried
or cleared task finds the job it (or a lost response) already created and waits for that one
instead of submitting again. Only when every job of the step failed does a retry submit a new
one (under ``<key>.try<n>``), and only while the system is usable: during an outage (a center
draining for maintenance kills its jobs) the task defers until it is back. Waiting is deferred
to :class:`~operators.triggers.job.JobFinishedTrigger`, so no worker slot is held.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import timedelta

from airflow.sdk import BaseOperator

from operators.hooks.sfapi import SfApiHook
from operators.triggers.facility import FacilityAvailableTrigger, check_system
from operators.triggers.job import JobFinishedTrigger
from sfapi_client.errors import WaitTimeout

LOG_LINES = 2000  # of a job's output copied into the task log
MAX_JOBS_PER_STEP = 10  # a step's first job and its replacements


class JobFailedError(RuntimeError):
    """The batch job ended in a state other than COMPLETED."""


@dataclass(frozen=True)
class JobStep:
    """One step's batch job: what it runs, under which key, which failures are an outcome.

    The step's first job carries ``key``, each replacement of a job that ended unsuccessfully
    the next of ``<key>.try1``, ``<key>.try2``, … (one listing of the user's jobs finds them
    all, whoever submitted them: a retry of the task, or a live run's transfer).
    """

    machine: str
    script: str
    key: str
    workdir: str | None = None
    accept_exit_codes: tuple[int, ...] = ()

    def accepted(self, state: str, exit_code: str | None) -> bool:
        """A FAILED job whose exit code is one of ``accept_exit_codes``."""
        code = str(exit_code or "").partition(":")[0]
        return state == "FAILED" and code.isdigit() and int(code) in self.accept_exit_codes

    def family(self) -> list[str]:
        """Every key this step may submit under, oldest first."""
        return [self.key] + [f"{self.key}.try{n}" for n in range(1, MAX_JOBS_PER_STEP)]

    def job_for(self, client, log):
        """The job to wait for: the step's live or successful job, or a new submission; None
        when every job ended and the system is not usable (replaced once it is back).

        A try that failed while its job still ran (an API blip, a cleared task) leaves that job
        behind under its key: every key of the family is looked at, so a later look waits for a
        running job or takes a successful one, and submits only when all the step's jobs have
        ended unsuccessfully (two jobs would write the same results folder).

        Raises
        ------
        JobFailedError
            when ``MAX_JOBS_PER_STEP`` jobs of the step all ended unsuccessfully
        """
        family = self.family()
        found = client.find_jobs(self.machine, family)
        jobs = [found[key] for key in reversed(family) if key in found]  # newest first
        job = next((j for j in jobs if not j.finished), None) or next(
            (j for j in jobs if j.succeeded or self.accepted(j.state, j.exit_code)), None
        )
        if job is not None:
            log.info(
                "found job %s (%s) for key %s: not submitting again", job.jobid, job.state, job.key
            )
            return job
        key = self.key
        if jobs:
            usable, why = check_system(client, self.machine)
            if not usable:
                log.info("job %s ended %s; not replaced yet: %s", jobs[0].jobid, jobs[0].state, why)
                return None
            key = self._next_key(family, found, jobs[0])
            log.info("job %s ended %s; submitting a new one: %s", jobs[0].jobid, jobs[0].state, key)
        if self.workdir:
            client.run_command(self.machine, f"mkdir -p {shlex.quote(self.workdir)}")
        job = client.submit_job(self.machine, self.script, key=key)
        log.info("submitted job %s on %s (key %s)", job.jobid, self.machine, key)
        return job

    def _next_key(self, family: list[str], found: dict, newest) -> str:
        """The key after the newest one used (a gap is never filled: it may be a lost job)."""
        last = max(family.index(key) for key in found)
        if last + 1 == len(family):
            raise JobFailedError(
                f"{len(family)} jobs for {self.key} on {self.machine} ended unsuccessfully, "
                f"the last {newest.jobid} {newest.state}: not submitting another; "
                "look at their output before clearing the task"
            )
        return family[last + 1]


class SfApiJobOperator(BaseOperator):
    """Submit `script` on `machine` under idempotency `key`, wait for it, return its record.

    Parameters
    ----------
    machine : str
    script : str (templated)
    key : str (templated) — stable per (run, trial, step)
    workdir : str (templated), optional — the job's facility working directory: created before
        submission (sbatch refuses a missing one); its ``slurm-<jobid>.out`` is downloaded when the
        job ends and copied into the task log, and its tail is put in the error when the job fails
    poll : (first, factor, max) seconds between state polls
    sync_wait : seconds to watch the job from the worker before deferring: short jobs finish
        without a deferral round trip (lower latency), and the trigger of a deferred long job
        never fires while the deferring worker is still exiting (Airflow 3.3 marks the task
        failed in that race: apache/airflow#71580)
    submit_only : return once the job is submitted (or found), without waiting; a later task
        with the same key waits for it (a live job is submitted when its run starts)
    accept_exit_codes : exit codes (the first number of Slurm's ``N:S``) of a FAILED job that
        count as an outcome to go on with, e.g. the live job's 4, "stalled": the job is
        returned with ``state`` ``STALLED`` rather than raising, and is never resubmitted
    """

    template_fields = ("script", "key", "workdir")

    def __init__(
        self,
        *,
        machine: str,
        script: str,
        key: str,
        workdir: str | None = None,
        sfapi_conn_id: str = "sfapi_default",
        poll=(1.0, 1.5, 30.0),
        sync_wait: float = 20.0,
        submit_only: bool = False,
        accept_exit_codes: tuple[int, ...] = (),
        **kwargs,
    ):
        # a retry of this step is cheap and safe: it finds the job by its key instead of resubmitting
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("retry_delay", timedelta(seconds=5))
        super().__init__(**kwargs)
        self.machine = machine
        self.script = script
        self.key = key
        self.workdir = workdir
        self.sfapi_conn_id = sfapi_conn_id
        self.poll = tuple(poll)
        self.sync_wait = sync_wait
        self.submit_only = submit_only
        self.accept_exit_codes = tuple(accept_exit_codes)

    def step(self) -> JobStep:
        """This step's job, from the rendered fields."""
        return JobStep(self.machine, self.script, self.key, self.workdir, self.accept_exit_codes)

    def execute(self, context, event=None):
        with SfApiHook(self.sfapi_conn_id).get_client() as client:
            job = self.step().job_for(client, self.log)
            if job is None:  # come back here once the system is usable again
                self.defer(
                    trigger=FacilityAvailableTrigger(
                        self.machine, self.sfapi_conn_id, self.poll[-1]
                    ),
                    method_name="execute",
                )
            context["ti"].xcom_push(key="jobid", value=job.jobid)
            if self.submit_only:
                return {"jobid": job.jobid, "state": job.state, "machine": self.machine}
            if not job.finished and self.sync_wait > 0:
                try:
                    job = client.wait(
                        self.machine, job.jobid, timeout=self.sync_wait, poll=(0.2, 1.5, 2.0)
                    )
                except WaitTimeout:
                    pass
        event = {
            "jobid": job.jobid,
            "state": job.state,
            "finished": job.finished,
            "succeeded": job.succeeded,
            "exit_code": job.exit_code,
        }
        if job.finished:
            return self.execute_complete(context, event)
        self.defer(
            trigger=JobFinishedTrigger(self.machine, job.jobid, self.sfapi_conn_id, self.poll),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event: dict):
        output, unavailable = self._job_output(event["jobid"])
        if output is not None:
            # the job's own stdout/stderr, where staff look: the task log
            lines = output.splitlines()
            self.log.info(
                "output of job %s (%s, last %d of %d lines):\n%s",
                event["jobid"],
                f"{self.workdir}/slurm-{event['jobid']}.out",
                min(len(lines), LOG_LINES),
                len(lines),
                "\n".join(lines[-LOG_LINES:]),
            )
        if self.step().accepted(event["state"], event.get("exit_code")):
            self.log.info("job %s ended with exit %s: accepted", event["jobid"], event["exit_code"])
            return {"jobid": event["jobid"], "state": "STALLED", "machine": self.machine}
        if not event.get("succeeded"):
            if output is not None:
                # the first line is the one-line reason shown on the dashboard: the job's last word
                lines = [line for line in output.splitlines() if line.strip()]
                tail = f": {lines[-1].strip()}" if lines else ""
                tail += "\nlast lines of its output:\n" + "\n".join(lines[-20:])
            else:
                tail = f"; output unavailable: {unavailable}" if unavailable else ""
            raise JobFailedError(
                f"job {event['jobid']} on {self.machine} ended {event['state']} "
                f"(exit {event.get('exit_code') or '?'}){tail}"
            )
        self.log.info("job %s completed", event["jobid"])
        return {"jobid": event["jobid"], "state": event["state"], "machine": self.machine}

    def _job_output(self, jobid: str) -> tuple[str | None, str]:
        """(text of the job's ``slurm-<jobid>.out`` at the center, why it is unavailable)."""
        if not self.workdir:
            return None, ""
        try:
            with SfApiHook(self.sfapi_conn_id).get_client() as client:
                data = client.download(self.machine, f"{self.workdir}/slurm-{jobid}.out")
        except Exception as exc:  # the job's outcome is what matters; its output is a courtesy
            return None, str(exc)
        return data.decode(errors="replace"), ""
