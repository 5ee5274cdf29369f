"""The results database: experiments, runs, trials, tags/datasets, jobs, transfers,
per-image results, run summaries and merged statistics, on SQLite or MySQL/MariaDB.

>>> db = ResultsDB("sqlite:///results.db")            # doctest: +SKIP
>>> run_id = db.ensure_run("cxi12345", "r0001")         # doctest: +SKIP
"""

from .db import IMAGE_COLUMNS, ResultsDB, TrialParamsChangedError, UnknownNameError, canonical_json
from .migrations import MIGRATIONS, Migration, SchemaError, apply_migrations
from .url import DbUrlError, parse_db_url

__all__ = [
    "IMAGE_COLUMNS",
    "MIGRATIONS",
    "DbUrlError",
    "Migration",
    "ResultsDB",
    "SchemaError",
    "TrialParamsChangedError",
    "UnknownNameError",
    "apply_migrations",
    "canonical_json",
    "parse_db_url",
]
