"""sfxflow's client of the Superfacility API v1.2 (requests-based, free of Airflow).

Note: the official NERSC package installs a top-level module of the same name; this project's
package shadows it when the project root is first on ``sys.path``.
"""

from .client import Client
from .errors import (
    AuthError,
    BadRequest,
    FacilityUnavailable,
    JobFailed,
    NotFound,
    SfApiError,
    TransientError,
    WaitTimeout,
)
from .jobs import TERMINAL_STATES, Job, tag_script
from .transport import backoff_delays

__all__ = [
    "Client",
    "Job",
    "TERMINAL_STATES",
    "tag_script",
    "backoff_delays",
    "SfApiError",
    "AuthError",
    "BadRequest",
    "FacilityUnavailable",
    "JobFailed",
    "NotFound",
    "TransientError",
    "WaitTimeout",
]
