"""``python -m kernels merge ... --split TAG[=EDGES] --events EVENTS.csv [--split-reference LABEL]``:
one merge per set of a pump-probe split, and the differences of the sets from the reference.

Beside ``--out`` it writes, per set, ``<stem>_<tag>-<label>.mtz`` (with its .hkl half sets),
per non-reference set ``<stem>_<tag>-<label>-minus-<reference>.mtz`` (DELTA_I, SIGDELTA_I),
and ``split_stats.json``: each set's images and statistics, each difference's Riso, CCiso,
scale and relative B, overall and per shell; and ``files``, each MTZ's name, bytes and Adler-32
(the run marker's form), so the download brings them home verified.
"""

from __future__ import annotations

import time
from pathlib import Path

from kernels.io.atomic import write_json
from kernels.io.marker import MarkerFile, adler32_file
from kernels.merging.algorithm import MergeParams
from kernels.merging.cli import clean, load_observations, model_summary, read_truth, write_outputs
from kernels.merging.events import read_event_table
from kernels.merging.exports import write_difference_mtz
from kernels.merging.settings import load_reference
from kernels.merging.splits import IsoDifference, SplitSpec, merge_splits
from kernels.merging.statistics import merge_statistics

SPLIT_STATS_FILE = "split_stats.json"


def difference_summary(diff: IsoDifference, reference: str, mtz: Path) -> dict:
    """What split_stats.json says of one set's difference from the reference set."""
    return {
        "reference": reference,
        "n_common": len(diff.keys),
        "riso": diff.riso,
        "cc_iso": diff.cc_iso,
        "scale": diff.scale,
        "relative_b": diff.relative_b,
        "shells": diff.shells,
        "mtz": str(mtz),
    }


def file_entries(paths: list[Path]) -> list[dict]:
    """The ``files`` of split_stats.json: each file's plain name, size and Adler-32."""
    return [MarkerFile(p.name, p.stat().st_size, adler32_file(p)).to_dict() for p in paths]


def merge_split_results(
    result_dirs,
    out_mtz,
    spec: SplitSpec,
    events_csv=None,
    truth_mtz=None,
    params: MergeParams = MergeParams(),
    reference_mtz=None,
) -> dict:
    """Merge the runs' images per set of `spec` (tags from `events_csv`); write the files above."""
    started = time.perf_counter()
    events = None if events_csv is None else read_event_table(events_csv)
    obs, symmetry, trial = load_observations(result_dirs, events)
    truth = None if truth_mtz is None else read_truth(truth_mtz, symmetry)[0]
    reference = None if reference_mtz is None else load_reference(reference_mtz, symmetry)
    split = merge_splits(obs, symmetry, spec, params, reference)
    out_mtz = Path(out_mtz)
    out_mtz.parent.mkdir(parents=True, exist_ok=True)
    stem = f"{out_mtz.stem}_{spec.tag}"
    sets = {}
    for label, merged in split.merges.items():
        outputs = write_outputs(out_mtz.with_name(f"{stem}-{label}.mtz"), symmetry, merged, params)
        stats = merge_statistics(symmetry, merged, params.shells, truth)
        sets[label] = {"images": split.images[label], **stats, **model_summary(merged), **outputs}
    differences = {}
    for label, diff in split.differences.items():
        path = out_mtz.with_name(f"{stem}-{label}-minus-{split.reference}.mtz")
        write_difference_mtz(path, symmetry, diff)
        differences[label] = difference_summary(diff, split.reference, path)
    mtzs = [Path(s["mtz"]) for s in sets.values()] + [Path(d["mtz"]) for d in differences.values()]
    result = {
        "trial": trial,
        "split": {"tag": spec.tag, "edges": list(spec.edges), "reference": split.reference},
        "images": int(obs.n_images),
        "images_in_no_set": int(obs.n_images - sum(split.images.values())),
        "sets": sets,
        "differences": differences,
        "files": file_entries(mtzs),
        "results": [str(d) for d in result_dirs],
        "events": None if events_csv is None else str(events_csv),
        "seconds": time.perf_counter() - started,
    }
    write_json(out_mtz.with_name(SPLIT_STATS_FILE), clean(result))
    return result
