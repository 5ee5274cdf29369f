"""Operator: bring result files of a run back from the HPC center into the experiment folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from airflow.sdk import BaseOperator

from kernels.io.atomic import write_bytes
from operators.hooks.sfapi import SfApiHook
from sfapi_client.errors import NotFound


class DownloadResultsOperator(BaseOperator):
    """Download `files` from facility dir `remote_dir` into local `local_dir` (atomically).

    Files listed in `optional` may be missing; any other missing file fails the task naming it.
    A name may have folders (``splits/laser_on/split_stats.json``), made locally as needed.
    Returns ``{name: bytes}`` of what was written.
    """

    template_fields = ("remote_dir", "local_dir", "files", "optional")

    def __init__(
        self,
        *,
        machine: str,
        remote_dir: str,
        local_dir: str,
        files: list[str],
        optional: Sequence[str] = (),
        sfapi_conn_id: str = "sfapi_default",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.machine = machine
        self.remote_dir = remote_dir
        self.local_dir = local_dir
        self.files = list(files)
        self.optional = list(optional)
        self.sfapi_conn_id = sfapi_conn_id

    def execute(self, context):
        local = Path(self.local_dir)
        local.mkdir(parents=True, exist_ok=True)
        written = {}
        with SfApiHook(self.sfapi_conn_id).get_client() as client:
            for name in self.files + self.optional:
                try:
                    data = client.download(self.machine, f"{self.remote_dir.rstrip('/')}/{name}")
                except NotFound:
                    if name in self.optional:
                        continue
                    raise FileNotFoundError(
                        f"{self.remote_dir}/{name} not found on {self.machine}"
                    ) from None
                (local / name).parent.mkdir(parents=True, exist_ok=True)
                write_bytes(local / name, data)
                written[name] = len(data)
        self.log.info("downloaded %s into %s", written, local)
        return written
