# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
# The suite runs on every core (pytest-xdist), a test file per worker so a module's fixtures are built once.
PYTEST_ARGS ?= -n auto --dist loadfile

.PHONY: install demo serve test lint check messages bench-ledger bench-matching bench-settlement bench-reports bench-crash bench-federation-crash bench-http bench-fuzz clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is needed"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# A fresh SQLite database with the demo banks, then the server at http://$(HOST):$(PORT). It runs with DEBUG off,
# so a wrong address shows the product's own 404 page and an error its 500 page (never Django's debug pages, which
# list every URL); WhiteNoise serves the collected static files, and tasks still run at once (no worker needed).
demo: install
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py collectstatic --noinput -v0
	DEBUG=0 TASKS_BACKEND=immediate $(PY) manage.py runserver $(HOST):$(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy timebank tests bench

check: install
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run -v0

test: lint check
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Collect new strings into the .po files (needs GNU gettext), then compile them (the .mo files are committed).
messages: install
	$(PY) manage.py makemessages -l en --no-location -i ".venv/*" -i "tests/*" -i "bench/*"
	$(PY) -m timebank.lib.compilemessages

bench-ledger: install
	$(PY) bench/ledger.py

bench-matching: install
	$(PY) bench/matching.py

bench-settlement: install
	$(PY) bench/settlement.py

# Stats, a member's statement and the risk projection at 100k and 1M members (MEMBERS=100000 for a quick run)
bench-reports: install
	$(PY) bench/reports.py $(if $(MEMBERS),--members $(MEMBERS),)

# SIGKILLs the app server and a private PostgreSQL cluster (never the shared one) under API load: docs/crash.md
bench-crash: install
	$(PY) bench/crash.py

# Two nodes (own databases tb_fedcrash_a/_b on the shared server) trading both ways while either is SIGKILLed
bench-federation-crash: install
	$(PY) bench/federation_crash.py

# schemathesis over the whole OpenAPI document, 100 examples per operation, caller and mode (hours; see bench/fuzz.py)
bench-fuzz: install
	$(PY) bench/fuzz.py

# The order loop over HTTP against gunicorn on PostgreSQL, next to a trivial endpoint: bench/README.md
bench-http: install
	$(PY) bench/http_loop.py

clean:
	rm -rf $(VENV) db.sqlite3 .mypy_cache .ruff_cache
