"""Drive the emulator with the official NERSC ``sfapi_client`` package; print a JSON report.

Run as ``python -P official_driver.py BASE_URL TOKEN_URL KEY_FILE SCENARIO`` so the project root
is not on ``sys.path``: this project's own ``sfapi_client`` package would shadow the official one.
"""

import io
import json
import sys

from sfapi_client import Client
from sfapi_client.exceptions import SfApiError

base_url, token_url, key_file, scenario = sys.argv[1:5]
report = {}

with Client(key=key_file, api_base_url=base_url, token_url=token_url, wait_interval=1) as client:
    assert "official-sfapi-client" in sys.modules["sfapi_client"].__file__  # not ours
    perlmutter = client.compute("perlmutter")
    if scenario == "status":
        report["status"] = client.resources.status("perlmutter").status.value
        report["all"] = sorted(client.resources.status())
        report["planned"] = [o.description for o in client.resources.planned_outages("perlmutter")]
        report["user"] = client.user().name
    elif scenario == "jobs":
        job = perlmutter.submit_job(
            "#!/bin/bash\n#SBATCH --job-name=official\nsleep 1\necho done\n"
        )
        report["jobid"] = job.jobid
        report["final"] = job.complete(timeout=60).value
        sacct = perlmutter.job(job.jobid)
        report["sacct_state"] = sacct.state.value
        report["sacct_name"] = sacct.jobname
        long_job = perlmutter.submit_job("#!/bin/bash\nsleep 60\n")
        long_job.running(timeout=30)
        long_job.cancel(wait=True)
        report["cancelled"] = long_job.state.value
        try:
            perlmutter.submit_job("#!/bin/bash\n#SBATCH --time=bogus\ntrue\n")
            report["bad_script"] = "accepted"
        except SfApiError as exc:
            report["bad_script"] = str(exc.message)
    elif scenario == "files":
        home = perlmutter.ls("/global/homes", directory=True)[0]
        report["home_is_dir"] = home.is_dir()
        target = home / "official.txt"
        data = io.BytesIO(b"hello from the official client\n")
        data.filename = "official.txt"
        home.upload(data)
        report["names"] = [p.name for p in home.ls()]
        with target.open("r") as f:
            report["text"] = f.read()
        with target.open("rb") as f:
            report["bytes_len"] = len(f.read())
        report["run"] = perlmutter.run("cat /global/homes/official.txt")
        try:
            perlmutter.ls("/global/homes/missing")
        except SfApiError as exc:
            report["missing"] = exc.message
print(json.dumps(report))
