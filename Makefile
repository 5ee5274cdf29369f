# sfxflow — every entry point builds its own .venv from pinned versions first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The official NERSC client (compatibility tests only) is imported as `sfapi_client`, like ours:
# it lives in its own directory, put on PYTHONPATH only by the tests that drive it.
OFFICIAL_SFAPI := $(VENV)/official-sfapi-client

.PHONY: install sysdeps lint test demo up bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	$(PY) -m pip install -q --no-deps -c constraints.txt --target $(OFFICIAL_SFAPI) sfapi_client==0.6.0
	touch $@

install: $(STAMP)

sysdeps:
	bash facility/install_system_packages.sh

# lint and format check, then types (the packages listed under [tool.mypy] in pyproject.toml)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint sysdeps
	$(PY) -m pytest tests

demo: install
	$(PY) -m facility.demo demo

up: install
	$(PY) -m facility.demo up $(if $(LIVE),--live)

bench: install sysdeps
	for b in bench/*_bench.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) var build *.egg-info
