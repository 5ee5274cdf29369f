"""Operator: bring result files of a run back from the HPC center into the experiment folder."""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

from airflow.sdk import BaseOperator

from kernels.io.atomic import write_bytes
from kernels.io.marker import MarkerError, MarkerFile, adler32_hex, check_files
from operators.hooks.sfapi import SfApiHook
from sfapi_client.errors import NotFound


class DownloadResultsOperator(BaseOperator):
    """Download `files` from facility dir `remote_dir` into local `local_dir` (atomically).

    Files listed in `optional` may be missing; any other missing file fails the task naming it.
    A name may have folders (``splits/laser_on/split_stats.json``), made locally as needed.
    Each of `manifests` (names among `files`, JSON with a run marker's ``files`` list) brings
    the files it lists from its own folder too, each written only once its size and Adler-32
    match the manifest's. Returns ``{name: bytes}`` of what was written.
    """

    template_fields = ("remote_dir", "local_dir", "files", "optional", "manifests")

    def __init__(
        self,
        *,
        machine: str,
        remote_dir: str,
        local_dir: str,
        files: list[str],
        optional: Sequence[str] = (),
        manifests: Sequence[str] = (),
        sfapi_conn_id: str = "sfapi_default",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.machine = machine
        self.remote_dir = remote_dir
        self.local_dir = local_dir
        self.files = list(files)
        self.optional = list(optional)
        self.manifests = list(manifests)
        self.sfapi_conn_id = sfapi_conn_id

    def execute(self, context):
        local = Path(self.local_dir)
        local.mkdir(parents=True, exist_ok=True)
        written = {}
        with SfApiHook(self.sfapi_conn_id).get_client() as client:
            for name in self.files + self.optional:
                data = self.fetch(client, name, optional=name in self.optional)
                if data is None:
                    continue
                (local / name).parent.mkdir(parents=True, exist_ok=True)
                write_bytes(local / name, data)
                written[name] = len(data)
            for manifest in self.manifests:
                folder = Path(manifest).parent
                for entry in listed_files(manifest, (local / manifest).read_bytes()):
                    name = (folder / entry.name).as_posix()
                    data = self.fetch(client, name)
                    check_arrived(name, data, entry)
                    write_bytes(local / name, data)
                    written[name] = len(data)
        self.log.info("downloaded %s into %s", written, local)
        return written

    def fetch(self, client, name: str, optional: bool = False) -> bytes | None:
        """The bytes of ``remote_dir/name``; None if an optional file is missing."""
        try:
            return client.download(self.machine, f"{self.remote_dir.rstrip('/')}/{name}")
        except NotFound:
            if optional:
                return None
            raise FileNotFoundError(
                f"{self.remote_dir}/{name} not found on {self.machine}"
            ) from None


def listed_files(manifest: str, text: bytes) -> tuple[MarkerFile, ...]:
    """The ``files`` a downloaded manifest lists (plain names, so never outside its folder).

    Raises
    ------
    ValueError
        The manifest is not JSON or its ``files`` are not a marker's list; names the manifest.
    """
    try:
        return check_files(json.loads(text).get("files"), manifest)
    except (json.JSONDecodeError, AttributeError, MarkerError) as exc:
        raise ValueError(f"manifest {manifest} lists no files to bring back: {exc}") from None


def check_arrived(name: str, data: bytes, entry: MarkerFile) -> None:
    """Refuse bytes whose size or Adler-32 differ from what the manifest says of ``name``."""
    got = adler32_hex(zlib.adler32(data))
    if len(data) != entry.bytes or got != entry.adler32:
        raise ValueError(
            f"{name} arrived as {len(data)} bytes, Adler-32 {got}; its manifest says "
            f"{entry.bytes} bytes, {entry.adler32}: not written, download again"
        )
