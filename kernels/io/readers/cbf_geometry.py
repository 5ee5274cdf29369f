"""Per-ASIC detector geometry from a multi-panel imgCIF/CBF header (pycbf reads the tables).

An imgCIF detector is a chain of axes (``_axis``): each pixel's position is its fast and slow
translation axes' displacements (``_array_structure_list_axis``), carried through every axis it
``depends_on`` up to the laboratory, each axis applying its rotation or translation (setting
from ``_diffrn_scan_frame_axis``) and then its offset. Arrays split into sections
(``_array_structure_list_section``) give one panel per section, whose fast/slow axes are named
as LCLS's ``cspad_cbf_tbx`` writes them (section ``ARRAY_X`` -> ``AXIS_X_F``, ``AXIS_X_S``).
Positions come out in the imgCIF frame (= DIALS's, beam along -z) and are turned into sfxflow's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels.crystal.detector import Detector, Panel, axis_rotation
from kernels.crystal.dials_frame import DIALS_TO_SFXFLOW


class CbfFileError(ValueError):
    """A CBF file that cannot be read or whose header lacks what the geometry needs."""


@dataclass(frozen=True)
class Section:
    """Where one panel's pixels are in the file: array number, sensor index, slices."""

    array: int
    sensor: int
    fs: slice
    ss: slice


def cbf_table(handle, name: str) -> list[dict[str, str]]:
    """Every row of an imgCIF category as a dict of its values (None where absent)."""
    handle.find_category(name.encode())
    columns = []
    for j in range(handle.count_columns()):
        handle.select_column(j)
        columns.append(handle.column_name().decode())
    rows = []
    for i in range(handle.count_rows()):
        handle.select_row(i)
        row: dict[str, str] = {}
        for j, column in enumerate(columns):
            handle.select_column(j)
            try:
                row[column] = handle.get_value().decode()
            except Exception:  # pycbf raises a bare Exception for a null value
                row[column] = ""
        rows.append(row)
    return rows


class AxisChain:
    """The ``_axis`` table with this frame's settings: maps points through axis chains."""

    def __init__(self, path: str, axes: list[dict[str, str]], settings: list[dict[str, str]]):
        self.path = path
        self.axes = {a["id"]: a for a in axes}
        self.settings = {s["axis_id"]: s for s in settings}

    def _number(self, row: dict[str, str], key: str) -> float:
        value = row.get(key, "")
        return 0.0 if value in ("", ".", "?") else float(value)

    def apply(self, axis_id: str, extra: dict[str, float]) -> np.ndarray:
        """Lab position of the origin carried through `axis_id` and every axis it depends on;
        `extra` adds displacements (a pixel's index times its step) to named axes."""
        point = np.zeros(3)
        for _ in range(len(self.axes) + 1):
            if axis_id in ("", ".", "?"):
                return point
            if axis_id not in self.axes:
                raise CbfFileError(f"{self.path}: axis {axis_id} is not in the _axis table")
            axis = self.axes[axis_id]
            vector = np.array([self._number(axis, f"vector[{i}]") for i in (1, 2, 3)])
            offset = np.array([self._number(axis, f"offset[{i}]") for i in (1, 2, 3)])
            setting = self.settings.get(axis_id, {})
            if axis["type"] == "rotation":
                point = axis_rotation(vector, self._number(setting, "angle")) @ point
            else:
                shift = self._number(setting, "displacement") + extra.get(axis_id, 0.0)
                point = point + vector * shift
            point = point + offset
            axis_id = axis.get("depends_on", ".")
        raise CbfFileError(f"{self.path}: the _axis table has a dependency loop")


def read_cbf_geometry(handle, path: str) -> tuple[Detector, list[Section]]:
    """Panels (sfxflow frame) and where each one's pixels lie in the file's arrays."""
    try:
        chain = AxisChain(
            path, cbf_table(handle, "axis"), cbf_table(handle, "diffrn_scan_frame_axis")
        )
        increments = {
            r["axis_id"]: float(r["displacement_increment"])
            for r in cbf_table(handle, "array_structure_list_axis")
        }
        sections = cbf_table(handle, "array_structure_list_section")
        arrays = [r["array_id"] for r in cbf_table(handle, "array_data")]
    except (Exception, KeyError) as exc:
        raise CbfFileError(f"{path}: not a multi-panel imgCIF file ({exc})") from None
    ranges: dict[str, dict[str, dict[str, str]]] = {}
    for row in sections:
        ranges.setdefault(row["id"], {})[row["index"]] = row
    panels: list[Panel] = []
    places: list[Section] = []
    for name, by_index in ranges.items():
        axis = name.replace("ARRAY_", "AXIS_", 1)
        fast_axis, slow_axis = f"{axis}_F", f"{axis}_S"
        if fast_axis not in increments or slow_axis not in increments:
            raise CbfFileError(f"{path}: section {name} has no axes {fast_axis}/{slow_axis}")
        # pixel (0, 0) at displacement 0 is the panel origin, as dxtbx takes it
        origin = chain.apply(fast_axis, {})
        fast = chain.apply(fast_axis, {fast_axis: increments[fast_axis]}) - origin
        slow = chain.apply(fast_axis, {slow_axis: increments[slow_axis]}) - origin
        f0, f1 = (int(by_index["1"][k]) for k in ("start", "end"))
        s0, s1 = (int(by_index["2"][k]) for k in ("start", "end"))
        sensor = int(by_index["3"]["start"]) - 1 if "3" in by_index else 0
        array = arrays.index(by_index["1"]["array_id"])
        o, f, s = (DIALS_TO_SFXFLOW @ v for v in (origin, fast, slow))
        panels.append(
            Panel(name, tuple(o), tuple(f), tuple(s), 0, f1 - f0 + 1, 0, s1 - s0 + 1, len(panels))
        )
        places.append(Section(array, sensor, slice(f0 - 1, f1), slice(s0 - 1, s1)))
    if not panels:
        raise CbfFileError(f"{path}: no array sections in the header")
    return Detector(tuple(panels), {"detector": tuple(p.name for p in panels)}), places
