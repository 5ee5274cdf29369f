"""DIALS's side of bench/cell_dials_bench.py (runs under the system /usr/bin/python3).

Usage: /usr/bin/python3 bench/dials_index_stills.py SPOTS.npz WORKDIR

SPOTS.npz holds ``col``, ``row`` (spot centroids, sfxflow pixels: centres at integers),
``image`` (still of each spot), ``wavelength`` and ``geometry`` (pixel_size_mm, distance_mm,
beam_x, beam_y, rows, cols). Writes one blank miniCBF of that detector (bench/dials_write_cbf.py)
and links it once per still, imports them as stills (dxtbx), and writes ``imported.expt`` and
``strong.refl`` holding exactly those spots (pixel centres at i + 0.5 for dxtbx), so that
dials.index sees the same spots as ours and only indexing is timed.
"""

import os
import sys
from pathlib import Path

import numpy as np
from dials.array_family import flex
from dxtbx.imageset import ImageSetFactory
from dxtbx.model import Experiment, ExperimentList
from dxtbx.model.experiment_list import ExperimentListFactory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dials_write_cbf import main as write_cbf  # noqa: E402


def blank_stills(spots, work: Path, n: int) -> list[str]:
    """n miniCBF paths of one blank frame of the detector (links to one file)."""
    pixel, distance, beam_x, beam_y, rows, cols = (float(v) for v in spots["geometry"])
    frame = np.zeros((1, int(rows), int(cols)), dtype=np.int32)
    geometry = np.array([pixel, distance, beam_x, beam_y])
    wavelength = np.array([float(spots["wavelength"])])
    np.savez(work / "blank.npz", frames=frame, wavelength=wavelength, geometry=geometry)
    write_cbf(str(work / "blank.npz"), str(work / "cbf"))
    blank = work / "cbf" / "image_00000.cbf"
    paths = []
    for i in range(n):
        link = work / "cbf" / f"still_{i:05d}.cbf"
        if not link.exists():
            os.symlink(blank.name, link)
        paths.append(str(link))
    return paths


def strong_table(spots, experiments):
    """The spots as a strong-spot reflection table, one experiment per still."""
    image = spots["image"].astype(int)
    n = len(image)
    table = flex.reflection_table()
    table["id"] = flex.int(image.tolist())
    table["imageset_id"] = flex.int(image.tolist())
    table["panel"] = flex.size_t(n, 0)
    xyz = np.stack([spots["col"] + 0.5, spots["row"] + 0.5, np.full(n, 0.5)], axis=1)
    table["xyzobs.px.value"] = flex.vec3_double([tuple(v) for v in xyz])
    table["xyzobs.px.variance"] = flex.vec3_double(n, (0.09, 0.09, 0.01))
    table["intensity.sum.value"] = flex.double(n, 100.0)
    table["intensity.sum.variance"] = flex.double(n, 100.0)
    box = [(int(x) - 2, int(x) + 3, int(y) - 2, int(y) + 3, 0, 1) for x, y, _ in xyz]
    table["bbox"] = flex.int6(box)
    table.set_flags(flex.bool(n, True), table.flags.strong)
    for i, experiment in enumerate(experiments):
        table.experiment_identifiers()[i] = experiment.identifier
    return table


def as_stills(sequences) -> ExperimentList:
    """One still experiment (no scan, no goniometer) per one-image sequence, as dials.import's
    convert_sequences_to_stills makes them (a miniCBF always reads as a sequence)."""
    stills = ExperimentList()
    for i, sequence in enumerate(sequences):
        imageset = ImageSetFactory.imageset_from_anyset(sequence.imageset)
        imageset.set_scan(None, 0)
        imageset.set_goniometer(None, 0)
        experiment = Experiment(
            imageset=imageset, beam=sequence.beam, detector=sequence.detector, identifier=str(i)
        )
        stills.append(experiment)
    return stills


def main(npz: str, workdir: str) -> None:
    spots = np.load(npz)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    n = int(spots["image"].max()) + 1
    experiments = as_stills(ExperimentListFactory.from_filenames(blank_stills(spots, work, n)))
    assert len(experiments) == n, f"{len(experiments)} experiments for {n} stills"
    experiments.as_file(str(work / "imported.expt"))
    strong_table(spots, experiments).as_file(str(work / "strong.refl"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
