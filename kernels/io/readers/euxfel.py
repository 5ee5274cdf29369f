"""European XFEL runs (one directory of RAW/CORR files) through EXtra-data, frames = trains x
pulses, panels placed by a CrystFEL geometry whose fixed dimension is the module number (as
EXtra-geom writes it). The photon energy comes from the geometry (the run's own control data
is not read yet)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kernels.io.geom import GeomFile, read_geom
from kernels.io.geom_detector import to_detector
from kernels.io.readers.base import FrameId, FrameReader, ReaderError, stacked
from kernels.io.readers.hdf5_geom import stated_wavelength

COMPONENTS = {"AGIPD1M": "image.data", "LPD1M": "image.data", "DSSC1M": "image.data"}


def _module_of(geom: GeomFile, name: str, values: dict[str, str]) -> int:
    fixed = [v for k, v in values.items() if k.startswith("dim") and v.lstrip("-").isdigit()]
    if len(fixed) != 1:
        raise geom.error(f"panel {name}: no module number among its dim values", name, "dim1")
    return int(fixed[0])


class EuxfelReader(FrameReader):
    """Frames of a EuXFEL run directory for one multi-module detector."""

    def __init__(self, run_dir: str | Path, geometry: GeomFile | str, component: str = "AGIPD1M"):
        import extra_data
        from extra_data import components

        self.run_dir = str(run_dir)
        self.geom = geometry if isinstance(geometry, GeomFile) else read_geom(geometry)
        if component not in COMPONENTS:
            raise ReaderError(f"{run_dir}: no reader for EuXFEL detector {component}")
        try:
            run = extra_data.RunDirectory(self.run_dir)
            self.source = getattr(components, component)(run)
        except Exception as exc:  # EXtra-data raises a bare Exception for a non-run folder
            raise ReaderError(
                f"{run_dir}: not a EuXFEL run with {component} data ({exc})"
            ) from None
        full = to_detector(self.geom)
        self.modules = [_module_of(self.geom, n, v) for n, v in self.geom.panels.items()]
        self.panels = full.panels
        self.detector = stacked(full, self.geom.path)
        self.key = COMPONENTS[component]
        self.per_train = int(self.source.frames_per_train)
        trains = len(self.source.train_ids)
        self.events = [FrameId(self.run_dir, i) for i in range(trains * self.per_train)]

    def frame(self, index: int) -> np.ndarray:
        import extra_data

        train, pulse = divmod(index, self.per_train)
        selection = self.source.select_trains(extra_data.by_index[[train]])
        data = selection.get_array(self.key).values[:, 0, pulse]  # (modules, ss, fs)
        if max(self.modules) >= len(data):
            raise ReaderError(f"{self.run_dir}: the geometry names module {max(self.modules)}")
        return np.stack(
            [data[m, p.ss0 : p.ss1, p.fs0 : p.fs1] for m, p in zip(self.modules, self.panels)]
        )

    def train_and_pulse(self, index: int) -> tuple[int, int]:
        train, pulse = divmod(index, self.per_train)
        return int(self.source.train_ids[train]), pulse

    def wavelength(self, index: int) -> float:
        return stated_wavelength(self.geom, "EuXFEL runs", f"{self.run_dir} frame {index}")

    def close(self) -> None:
        """EXtra-data opens and closes the run's files itself."""
