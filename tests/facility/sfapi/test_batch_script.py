"""#SBATCH parsing (emulator) and idempotency-key tagging (client): pure functions."""

from __future__ import annotations

import signal

import pytest

from facility.sfapi.batch_script import BatchScriptError, parse_batch_script, parse_time_limit
from sfapi_client.jobs import Job, job_from_row, tag_script


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("5", 300),
        ("1:30", 90),
        ("2:00:01", 7201),
        ("1-2", 93600),
        ("1-0:0:5", 86405),
        ("UNLIMITED", None),
    ],
)
def test_time_limits(text, seconds):
    assert parse_time_limit(text) == seconds


def test_directives_long_short_and_stop_at_first_command():
    opts = parse_batch_script(
        "#!/bin/bash\n#SBATCH --job-name=run7 --comment=k1\n#SBATCH -N 2 -n8\n"
        "# plain comment\n\n#SBATCH -o out-%j.log --error=err.log\n#SBATCH --chdir /scratch/x\n"
        "#SBATCH --signal=B:USR1@30 --time=0:10 # trailing\n#SBATCH --account=m1 --qos=debug\n"
        "srun hostname\n#SBATCH --job-name=ignored\n"
    )
    assert (opts.job_name, opts.comment, opts.nodes, opts.ntasks) == ("run7", "k1", 2, 8)
    assert (opts.output, opts.error, opts.chdir) == ("out-%j.log", "err.log", "/scratch/x")
    assert opts.signal_spec == (int(signal.SIGUSR1), 30) and opts.time_limit_s == 10


@pytest.mark.parametrize(
    "script, message",
    [
        ("echo hi\n", "first line must start with #!"),
        ("#!/bin/bash", "first line must start with #!"),
        ("#!/bin/bash\n#SBATCH --time=soon\n", "Invalid time limit"),
        ("#!/bin/bash\n#SBATCH --signal=NOPE@3\n", "Invalid --signal"),
        ("#!/bin/bash\n#SBATCH --ntasks=0\n", "Invalid --ntasks"),
        ("#!/bin/bash\necho \0\n", "NULL character"),
    ],
)
def test_malformed_scripts_name_the_problem(script, message):
    with pytest.raises(BatchScriptError, match=message):
        parse_batch_script(script)


def test_tag_script_puts_key_last_among_directives():
    tagged = tag_script("#!/bin/bash\n#SBATCH --comment=mine\n\necho hi\n#SBATCH -J late", "k-1")
    assert tagged.splitlines() == [
        "#!/bin/bash",
        "#SBATCH --comment=mine",
        "",
        "#SBATCH --comment=sfxflow-key:k-1",
        "echo hi",
        "#SBATCH -J late",
    ]
    assert parse_batch_script(tagged).comment == "sfxflow-key:k-1"
    assert parse_batch_script(tag_script("#!/bin/sh\n", "abc")).comment == "sfxflow-key:abc"
    with pytest.raises(ValueError, match="invalid idempotency key"):
        tag_script("#!/bin/sh\ntrue\n", "has space")


def test_job_rows_map_to_jobs_and_final_states():
    job = job_from_row(
        "perlmutter",
        {
            "jobid": "7",
            "state": "CANCELLED by 0",
            "jobname": "x",
            "comment": "sfxflow-key:abc",
            "exitcode": "0:15",
        },
    )
    assert (job.state, job.name, job.key, job.finished, job.succeeded) == (
        "CANCELLED",
        "x",
        "abc",
        True,
        False,
    )
    for state in ("NODE_FAIL", "BOOT_FAIL", "DEADLINE"):
        assert Job("perlmutter", "1", state).finished
    assert not Job("perlmutter", "1", "RUNNING").finished
