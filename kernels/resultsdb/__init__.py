"""The results database: experiments, runs, trials, tags/datasets, jobs, transfers,
per-image results, run summaries and merged statistics, on SQLite or MySQL/MariaDB.

>>> db = ResultsDB("sqlite:///results.db")            # doctest: +SKIP
>>> run_id = db.ensure_run("cxi12345", "r0001")         # doctest: +SKIP
"""

from .catalog import TrialParamsChangedError, UnknownNameError
from .connection import canonical_json
from .db import ResultsDB
from .images import IMAGE_COLUMNS, IMAGE_KINDS
from .migrations import MIGRATIONS, Migration, SchemaError, apply_migrations
from .url import DbUrlError, parse_db_url

__all__ = [
    "IMAGE_COLUMNS",
    "IMAGE_KINDS",
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
