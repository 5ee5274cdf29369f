"""The DAG tests use the operator tests' real SF API emulator and its Airflow connection, and
the dashboard tests' Airflow logins."""

from tests.operators.conftest import emulator, sfapi_conn  # noqa: F401 - fixtures
from tests.plugins.sfx_dashboard_app.conftest import auth_manager, token  # noqa: F401 - fixtures
