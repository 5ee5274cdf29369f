"""CrystFEL geometry files (crystfel_geometry(5)): read, check and write.

The file is kept as CrystFEL states it (pixels, metres, pixels per metre), each value a checked
string, so writing and reading again gives the identical model; :mod:`kernels.io.geom_detector`
turns it into a :class:`~kernels.crystal.detector.Detector`. Panel properties given before a
panel's first line are its defaults, as in CrystFEL. A broken file raises
:class:`GeometryFileError` naming the file and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_FLOAT = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
_VECTOR = re.compile(rf"^(\s*({_FLOAT})?\s*[xyz]\s*)+$")
_TERM = re.compile(r"([+-]?)((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)?([xyz])")
_INT = re.compile(r"^[+-]?\d+$")
_MASK_N = re.compile(r"^mask\d_(data|file|goodbits|badbits)$")
_DIM = re.compile(r"^dim\d$")

INT_KEYS = {"min_fs", "max_fs", "min_ss", "max_ss"}
FLOAT_KEYS = {"corner_x", "corner_y", "res", "adu_per_eV", "adu_per_photon", "max_adu"}
FLOAT_KEYS |= {"flag_lessthan", "flag_morethan", "flag_equal"}
TEXT_KEYS = {"data", "mask", "mask_file", "saturation_map", "saturation_map_file"}
TEXT_KEYS |= {"mask_good", "mask_bad"}
PANEL_KEYS = INT_KEYS | FLOAT_KEYS | TEXT_KEYS | {"fs", "ss", "clen", "coffset", "no_index"}
PANEL_KEYS |= {"badrow_direction", "mask_edge_pixels"}
GLOBAL_KEYS = {"photon_energy", "photon_energy_bandwidth", "photon_energy_scale", "wavelength"}
GLOBAL_KEYS |= {"electron_voltage", "bandwidth", "peak_list", "peak_list_type"}
GLOBAL_KEYS |= {"detector_shift_x", "detector_shift_y"}
BAD_KEYS = {"min_x", "max_x", "min_y", "max_y", "min_fs", "max_fs", "min_ss", "max_ss", "panel"}
REQUIRED = ("min_fs", "max_fs", "min_ss", "max_ss", "corner_x", "corner_y", "fs", "ss", "res")
GROUP_PREFIXES = ("rigid_group_collection_", "rigid_group_", "group_")
LENGTH_UNITS = {"m": 1.0, "mm": 1e-3}


class GeometryFileError(ValueError):
    """A geometry file that cannot be used; the message names the file and the line."""


@dataclass
class GeomFile:
    """A CrystFEL geometry file as stated: globals, panels, bad regions, rigid groups.

    ``lines`` maps (section, key) to the line that set it, section being "", a panel, a bad
    region or a group key; it is not part of equality.
    """

    path: str = field(compare=False)
    globals: dict[str, str] = field(default_factory=dict)
    panels: dict[str, dict[str, str]] = field(default_factory=dict)
    bad_regions: dict[str, dict[str, str]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    lines: dict[tuple[str, str], int] = field(default_factory=dict, compare=False)

    def error(self, message: str, section: str = "", key: str = "") -> GeometryFileError:
        """An error at the line that set (section, key): the section's, the default's, or the
        section's first line."""
        first = min((n for (s, _), n in self.lines.items() if s == section), default=0)
        line = self.lines.get((section, key)) or self.lines.get(("", key)) or first
        return GeometryFileError(f"{self.path}:{line}: {message}")


def parse_vector(text: str) -> tuple[float, float, float]:
    """'+0.0048x +0.99999y' -> (0.0048, 0.99999, 0.0) in pixel units."""
    out = {"x": 0.0, "y": 0.0, "z": 0.0}
    for match in _TERM.finditer(text.replace(" ", "")):
        sign, number, axis = match.groups()
        out[axis] += float(f"{sign}{number or 1}")
    return out["x"], out["y"], out["z"]


def parse_length(text: str) -> float | None:
    """clen/coffset in metres ('0.1', '95.3 mm'); None when it names an HDF5 field."""
    parts = text.split()
    if text.startswith("/"):
        return None
    return float(parts[0]) * LENGTH_UNITS[parts[1] if len(parts) > 1 else "m"]


def _is_whole_number(text: str) -> bool:
    """'12' or '12.0' (CrystFEL reads pixel ranges as numbers)."""
    try:
        return float(text).is_integer()
    except ValueError:
        return False


def pixel_index(text: str) -> int:
    """A checked min/max_fs/ss value as an int."""
    return int(float(text))


def _check_value(geom: GeomFile, key: str, value: str, line: int) -> None:
    def bad(what: str) -> GeometryFileError:
        return GeometryFileError(f"{geom.path}:{line}: {key} = {value!r} is not {what}")

    if key in INT_KEYS and not _is_whole_number(value):
        raise bad("a whole number")
    try:
        if key in FLOAT_KEYS:
            float(value)
        if key in ("clen", "coffset", "detector_shift_x", "detector_shift_y"):
            parse_length(value)
    except (ValueError, KeyError, IndexError):
        raise bad("a number (lengths in m, or with 'mm')") from None
    if key in ("fs", "ss") and not _VECTOR.match(value):
        raise bad("a vector like '+0.99x -0.01y'")
    if _DIM.match(key) and value not in ("%", "fs", "ss") and not _INT.match(value):
        raise bad("%, fs, ss or an index")
    if key == "no_index" and value not in ("0", "1", "true", "false"):
        raise bad("0 or 1")


def _is_panel_key(key: str) -> bool:
    return key in PANEL_KEYS or bool(_DIM.match(key) or _MASK_N.match(key))


def _assign(geom: GeomFile, defaults: dict[str, str], name: str, key: str, value: str, n: int):
    if name.startswith("bad"):
        if key not in BAD_KEYS:
            raise GeometryFileError(f"{geom.path}:{n}: unknown bad-region key {name}/{key}")
        geom.bad_regions.setdefault(name, {})[key] = value
    else:
        if not _is_panel_key(key):
            raise GeometryFileError(f"{geom.path}:{n}: unknown panel key {name}/{key}")
        geom.panels.setdefault(name, dict(defaults))[key] = value
    geom.lines[(name, key)] = n


def read_geom(path: str | Path) -> GeomFile:
    """Parse and check a CrystFEL geometry file.

    Raises
    ------
    GeometryFileError
        Unreadable file, bad syntax, unknown key, bad value, missing panel property, a bad
        region or group naming an unknown panel, panels overlapping in the data.
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GeometryFileError(f"{path}: cannot read the geometry file ({exc})") from None
    return parse_geom(text, str(path))


def parse_geom(text: str, path: str) -> GeomFile:
    """Parse and check the text of a CrystFEL geometry file; errors name `path` and the line.

    Raises
    ------
    GeometryFileError
        As :func:`read_geom`.
    """
    geom = GeomFile(path)
    defaults: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise GeometryFileError(f"{path}:{n}: expected 'key = value', got {line!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        value = value.rstrip(";").strip()
        _check_value(geom, key.rsplit("/", 1)[-1], value, n)
        if "/" in key:
            name, sub = key.split("/", 1)
            _assign(geom, defaults, name, sub, value, n)
        elif key.startswith(GROUP_PREFIXES):
            geom.groups[key] = [m.strip() for m in value.split(",") if m.strip()]
            geom.lines[(key, "")] = n
        elif _is_panel_key(key):
            defaults[key] = geom.globals[key] = value
            geom.lines[("", key)] = n
        elif key in GLOBAL_KEYS:
            geom.globals[key] = value
            geom.lines[("", key)] = n
        else:
            raise GeometryFileError(f"{path}:{n}: unknown key {key!r}")
    check_geom(geom)
    return geom


def check_geom(geom: GeomFile) -> None:
    """Complete panels, known group members and bad-region panels, no overlap in the data."""
    if not geom.panels:
        raise geom.error("no panel is defined")
    for name, values in geom.panels.items():
        missing = [k for k in REQUIRED if k not in values]
        if missing:
            raise geom.error(f"panel {name} lacks {', '.join(missing)}", name)
        for lo, hi in (("min_fs", "max_fs"), ("min_ss", "max_ss")):
            if pixel_index(values[lo]) < 0 or pixel_index(values[hi]) < pixel_index(values[lo]):
                raise geom.error(f"panel {name}: {lo}..{hi} is not a valid range", name, hi)
    for key, members in geom.groups.items():
        unknown = [m for m in members if m not in group_member_names(geom, key)]
        if unknown:
            raise geom.error(f"{key} names unknown members {unknown}", key)
    for name, values in geom.bad_regions.items():
        if "panel" in values and values["panel"] not in geom.panels:
            raise geom.error(f"{name} names unknown panel {values['panel']}", name, "panel")
    _check_overlap(geom)


def group_member_names(geom: GeomFile, key: str) -> set[str]:
    """Names a group may hold: panels (rigid_group_), rigid groups (rigid_group_collection_),
    panels or other groups (CrystFEL 0.10's group_)."""
    if key.startswith("rigid_group_collection_"):
        return {k.removeprefix("rigid_group_") for k in geom.groups}
    if key.startswith("rigid_group_"):
        return set(geom.panels)
    return set(geom.panels) | {k.removeprefix("group_") for k in geom.groups}


def panel_block_key(values: dict[str, str]) -> tuple:
    """What identifies a panel's data block: its data path and its fixed dimension indices."""
    dims = tuple(sorted((k, v) for k, v in values.items() if _DIM.match(k) and _INT.match(v)))
    return values.get("data", ""), dims


def _check_overlap(geom: GeomFile) -> None:
    seen: dict[tuple, list[tuple[str, list[int]]]] = {}
    for name, v in geom.panels.items():
        box = [pixel_index(v[k]) for k in ("min_fs", "max_fs", "min_ss", "max_ss")]
        for other, (f0, f1, s0, s1) in seen.setdefault(panel_block_key(v), []):
            if box[0] <= f1 and f0 <= box[1] and box[2] <= s1 and s0 <= box[3]:
                raise geom.error(f"panel {name} overlaps panel {other} in the data", name)
        seen[panel_block_key(v)].append((name, box))


def write_geom(geom: GeomFile, path: str | Path) -> None:
    """Write `geom` so that :func:`read_geom` gives it back identical."""
    out = [f"; written by sfxflow from {Path(geom.path).name}", ""]
    # panel defaults go last, so that they reach no panel that did not have them
    out += [f"{k} = {v}" for k, v in geom.globals.items() if not _is_panel_key(k)]
    out += [""] + [f"{k} = {','.join(m)}" for k, m in geom.groups.items()]
    for name, values in geom.panels.items():
        out += [""] + [f"{name}/{k} = {v}" for k, v in values.items()]
    for name, values in geom.bad_regions.items():
        out += [""] + [f"{name}/{k} = {v}" for k, v in values.items()]
    out += [""] + [f"{k} = {v}" for k, v in geom.globals.items() if _is_panel_key(k)]
    Path(path).write_text("\n".join(out) + "\n")
