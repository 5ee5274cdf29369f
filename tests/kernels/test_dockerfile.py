"""The compute-node Dockerfile stays consistent with the kernels (it is written, not built, here)."""

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMPORT_NAMES = {
    "PyMySQL": "pymysql",
    "EXtra-data": "extra_data",
    "EXtra-geom": "extra_geom",
    "mpich": None,
}  # distribution -> import name (None: no module)
# Imports of extras the image leaves out: its MPI jobs read the chunk format only, and psana
# (LCLS-II XTC2 files, read in one process) would add a compiler and Kerberos headers to it.
EXTRAS = {"psana"}


def third_party_imports() -> set[str]:
    found = set()
    for path in (REPO / "kernels").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {
        m for m in found if m not in sys.stdlib_module_names and m not in ("kernels", "__future__")
    }


def test_image_installs_every_kernel_dependency_pinned_and_no_airflow():
    text = (REPO / "Dockerfile").read_text()
    packages = (
        re.search(r"pip install[^\n]*-c constraints\.txt \\\n\s+([^\n]+)", text).group(1).split()
    )
    packages = [p for p in packages if p not in ("\\", "&&")]
    modules = {IMPORT_NAMES.get(p, p.lower()) for p in packages} - {None}
    assert third_party_imports() - EXTRAS <= modules
    pinned = {
        line.split("==")[0].lower() for line in (REPO / "constraints.txt").read_text().splitlines()
    }
    assert {p.lower() for p in packages} <= pinned
    assert "airflow" not in text.lower().replace("no airflow", "")
    assert "COPY kernels/" in text and 'ENTRYPOINT ["python", "-m", "kernels"]' in text
