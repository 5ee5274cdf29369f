"""Write calibrated frames as miniCBF files for DIALS (runs under the system /usr/bin/python3).

Usage: /usr/bin/python3 bench/dials_write_cbf.py FRAMES.npz OUTDIR

FRAMES.npz holds ``frames`` (n, rows, cols) photon counts (masked pixels -1), ``wavelength`` (n,)
and ``geometry`` (pixel_size_mm, distance_mm, beam_x, beam_y in sfxflow's convention: pixel
centres at integer coordinates). dxtbx's pixel coordinates put pixel centres at i + 0.5, and its
lab frame is sfxflow's turned 180 degrees about x (beam along -z, slow axis -y), which the
miniCBF "+x, -y" detector convention already is.
"""

import sys
from pathlib import Path

import numpy as np
from dxtbx.format.FormatCBFMini import FormatCBFMini
from dxtbx.model import BeamFactory, DetectorFactory
from scitbx.array_family import flex


def main(npz, outdir):
    data = np.load(npz)
    pixel, distance, beam_x, beam_y = (float(v) for v in data["geometry"])
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    rows, cols = data["frames"].shape[1:]
    detector = DetectorFactory.simple(
        "PAD",
        distance,
        ((beam_x + 0.5) * pixel, (beam_y + 0.5) * pixel),
        "+x",
        "-y",
        (pixel, pixel),
        (cols, rows),
        (-1, 1e6),
        [],
    )
    for i, (frame, wavelength) in enumerate(zip(data["frames"], data["wavelength"])):
        beam = BeamFactory.simple(float(wavelength))
        image = flex.int(np.ascontiguousarray(frame, dtype=np.int32))
        FormatCBFMini.as_file(detector, beam, None, None, image, str(out / f"image_{i:05d}.cbf"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
