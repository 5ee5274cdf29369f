"""CrystFEL geometry <-> detector model, bad-pixel masks, and the check of data against it.

CrystFEL states a pixel's position as ``(corner + fs * fs_vec + ss * ss_vec) / res`` in x and y
(pixels, pixels per metre) and ``clen + coffset`` (+ the vectors' z terms) in z, with the beam
along +z: the sfxflow lab frame, so only units change (metres and pixels to millimetres).
"""

from __future__ import annotations

import numpy as np

from kernels.crystal.detector import Detector, Panel
from kernels.io.geom import (
    GeomFile,
    panel_block_key,
    parse_length,
    parse_vector,
    pixel_index,
)


def data_blocks(geom: GeomFile) -> list[tuple]:
    """The distinct data blocks (data path, fixed dimension indices), in panel order."""
    blocks: list[tuple] = []
    for values in geom.panels.values():
        if panel_block_key(values) not in blocks:
            blocks.append(panel_block_key(values))
    return blocks


def _camera_length_m(geom: GeomFile, name: str, values: dict[str, str], clen_m) -> float:
    clen = parse_length(values.get("clen", geom.globals.get("clen", "0")))
    if clen is None:
        if clen_m is None:
            raise geom.error(
                f"panel {name}: clen is the data field {values.get('clen')!r}; give its value",
                name,
                "clen",
            )
        clen = clen_m
    return clen + (parse_length(values.get("coffset", "0")) or 0.0)


def _detector_shift_mm(geom: GeomFile, axis: str) -> float:
    """detector_shift_x/y in mm (metres unless stated); a data field is not supported yet."""
    key = f"detector_shift_{axis}"
    shift = parse_length(geom.globals.get(key, "0"))
    if shift is None:
        raise geom.error(f"{key} from a data field is not supported", "", key)
    return 1000.0 * shift


def to_detector(geom: GeomFile, clen_m: float | None = None) -> Detector:
    """The detector a geometry file describes (mm, sfxflow frame).

    Parameters
    ----------
    clen_m : float, optional
        Camera length in metres where the file names a data field for it.
    """
    blocks = data_blocks(geom)
    shift = [_detector_shift_mm(geom, axis) for axis in "xy"]
    panels = []
    for name, v in geom.panels.items():
        px_mm = 1000.0 / float(v["res"])
        z_mm = 1000.0 * _camera_length_m(geom, name, v, clen_m)
        fast = np.array(parse_vector(v["fs"])) * px_mm
        slow = np.array(parse_vector(v["ss"])) * px_mm
        corner = (
            float(v["corner_x"]) * px_mm + shift[0],
            float(v["corner_y"]) * px_mm + shift[1],
            z_mm,
        )
        panels.append(
            Panel(
                name=name,
                corner=corner,
                fast=(float(fast[0]), float(fast[1]), float(fast[2])),
                slow=(float(slow[0]), float(slow[1]), float(slow[2])),
                fs0=pixel_index(v["min_fs"]),
                fs1=pixel_index(v["max_fs"]) + 1,
                ss0=pixel_index(v["min_ss"]),
                ss1=pixel_index(v["max_ss"]) + 1,
                block=blocks.index(panel_block_key(v)),
            )
        )
    return Detector(tuple(panels), _detector_groups(geom))


def _detector_groups(geom: GeomFile) -> dict[str, tuple[str, ...]]:
    """Groups keyed by their file key (so a group '0' never clashes with a panel '0')."""
    groups = {}
    for key, members in geom.groups.items():
        if key.startswith("rigid_group_collection_"):
            groups[key] = tuple(f"rigid_group_{m}" for m in members)
        elif key.startswith("rigid_group_"):
            groups[key] = tuple(members)
        else:
            groups[key] = tuple(m if m in geom.panels else f"group_{m}" for m in members)
    return groups


def from_detector(
    detector: Detector, path: str = "<sfxflow>", data: str = "/entry_1/data_1/data"
) -> GeomFile:
    """A geometry file for `detector`, panels stacked along the frame as ``dim0 = %``."""
    clen_m = float(np.median(detector.corners[:, 2])) / 1000.0
    geom = GeomFile(path, globals={"clen": repr(clen_m), "data": data, "dim0": "%"})
    for p in detector.panels:
        px = p.pixel_size_mm
        fast, slow = np.asarray(p.fast) / px, np.asarray(p.slow) / px
        values = {
            "min_fs": str(p.fs0),
            "max_fs": str(p.fs1 - 1),
            "min_ss": str(p.ss0),
            "max_ss": str(p.ss1 - 1),
            "corner_x": repr(p.corner[0] / px),
            "corner_y": repr(p.corner[1] / px),
            "fs": _vector_text(fast),
            "ss": _vector_text(slow),
            "res": repr(1000.0 / px),
            "coffset": repr(p.corner[2] / 1000.0 - clen_m),
            "data": data,
        }
        stacked = detector_blocks(detector) > 1  # panel-stacked frames: dim1 is the block
        layout = ["%", str(p.block), "ss", "fs"] if stacked else ["%", "ss", "fs"]
        values |= {f"dim{i}": d for i, d in enumerate(layout)}
        geom.panels[p.name] = values
    for name, members in detector.groups.items():
        if name.startswith(("rigid_group_", "group_")):
            # a member group is written as the file names it: without its key's prefix
            prefix = "group_" if name.startswith("group_") else "rigid_group_"
            geom.groups[name] = [
                m.removeprefix(prefix) if m in detector.groups else m for m in members
            ]
    return geom


def detector_blocks(detector: Detector) -> int:
    return 1 + max(p.block for p in detector.panels)


def _vector_text(v: np.ndarray) -> str:
    return " ".join(f"{c:+.17g}{axis}" for c, axis in zip(v, "xyz") if c != 0.0) or "0x"


def check_data_shape(geom: GeomFile, detector: Detector, block: int, shape: tuple) -> None:
    """Refuse a data block (rows, cols) too small for the panels that read from it.

    Raises
    ------
    GeometryFileError
        Naming the geometry file, the line of the panel's range, and the data's shape.
    """
    for p in detector.panels:
        if p.block != block:
            continue
        for key, end, size in (("max_fs", p.fs1, shape[-1]), ("max_ss", p.ss1, shape[-2])):
            if end > size:
                raise geom.error(
                    f"panel {p.name}: {key} = {end - 1} is outside the data ({shape})", p.name, key
                )


def bad_pixel_masks(geom: GeomFile, detector: Detector, shapes: list[tuple[int, int]]):
    """Per data block, True where a bad region, a no_index panel or no panel covers a pixel."""
    masks = [np.ones(s, dtype=bool) for s in shapes]
    for i, (p, values) in enumerate(zip(detector.panels, geom.panels.values())):
        if values.get("no_index", "0") not in ("0", "false"):
            continue
        ss, fs = np.mgrid[p.ss0 : p.ss1, p.fs0 : p.fs1]
        bad = np.zeros(ss.shape, dtype=bool)
        xy = None  # pixel centres in lab pixels, computed only for an x/y region
        for name, region in geom.bad_regions.items():
            if region.get("panel", p.name) != p.name:
                continue
            if "min_x" in region:
                if xy is None:
                    lab = detector.lab_position(i, fs - p.fs0 + 0.5, ss - p.ss0 + 0.5)
                    xy = lab[..., :2] / p.pixel_size_mm
                bad |= _inside(geom, name, region, ("x", "y"), xy[..., 0], xy[..., 1])
            else:
                bad |= _inside(geom, name, region, ("fs", "ss"), fs, ss)
        masks[p.block][p.ss0 : p.ss1, p.fs0 : p.fs1] = bad
    return masks


def _inside(geom: GeomFile, name: str, region: dict, axes, u, v) -> np.ndarray:
    """Where (u, v) lies in the bad region's [min, max] ranges along its two axes."""
    try:
        lo_u, hi_u = float(region[f"min_{axes[0]}"]), float(region[f"max_{axes[0]}"])
        lo_v, hi_v = float(region[f"min_{axes[1]}"]), float(region[f"max_{axes[1]}"])
    except KeyError as missing:
        raise geom.error(f"bad region {name} lacks {missing.args[0]}", name) from None
    return (u >= lo_u) & (u <= hi_u) & (v >= lo_v) & (v <= hi_v)
