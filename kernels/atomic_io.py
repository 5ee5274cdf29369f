"""Files that readers see whole or not at all (results, summaries, the run marker)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(path, data) -> Path:
    """Write `data` as JSON to a hidden temporary name beside `path`, then rename it into place.

    A reader (another rank, a watcher, a download) never sees a half-written file, and a scan of
    the folder never mistakes the temporary file for the real one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return path
