# sfxflow — every entry point builds its own .venv from pinned versions first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The official NERSC client (compatibility tests only) is imported as `sfapi_client`, like ours:
# it lives in its own directory, put on PYTHONPATH only by the tests that drive it.
OFFICIAL_SFAPI := $(VENV)/official-sfapi-client
# The LCLS-II XTC2 reader's psana is an extra: its pykerberos builds against a Debian package.
XTC2   := $(VENV)/.installed-xtc2

.PHONY: install install-xtc2 sysdeps lint test demo up bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	$(PY) -m pip install -q --no-deps -c constraints.txt --target $(OFFICIAL_SFAPI) sfapi_client==0.6.0
	touch $@

install: $(STAMP)

$(XTC2): $(STAMP) facility/install_system_packages.sh
	bash facility/install_system_packages.sh
	$(PY) -m pip install -q -c constraints.txt -e '.[xtc2]'
	touch $@

install-xtc2: $(XTC2)

sysdeps:
	bash facility/install_system_packages.sh

# lint and format check, then types (the packages listed under [tool.mypy] in pyproject.toml)
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint sysdeps install-xtc2
	$(PY) -m pytest tests

demo: install
	$(PY) -m facility.demo demo

up: install
	$(PY) -m facility.demo up $(if $(LIVE),--live)

bench: install sysdeps
	for b in bench/*_bench.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) var build *.egg-info
