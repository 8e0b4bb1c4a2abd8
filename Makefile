# Kirim: `make run` for a local demo, `make test` for the whole suite. See README.md and docs/.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
META_PORT ?= 8081
RECEIVER_PORT ?= 8082

.PHONY: install lock run test lint docs postgres screenshots bench
BENCH_DATABASE_URL ?= postgres://kirim:kirim@127.0.0.1:5432/kirim_bench

install: $(VENV)/.installed

# The development set (tests, linters) on top of the runtime lock; production installs requirements.txt alone.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Recompile the exact pins after editing requirements.in or requirements-dev.in.
lock: install
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements.txt requirements.in
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links -o requirements-dev.txt requirements-dev.in

# Local settings with fresh secrets, made once; real environment variables override them.
.env:
	$(PYTHON) -c 'import secrets; t = secrets.token_urlsafe; print(f"SECRET_KEY={t(50)}\nDEBUG=true\nMETA_APP_SECRET={t(32)}\nMETA_WEBHOOK_VERIFY_TOKEN={t(24)}\nMETA_GRAPH_URL=http://$(HOST):$(META_PORT)/v23.0")' > $@
	chmod 600 $@

# The demo's processes, one line each; dev/run_together.py stops them all on Ctrl-C or when one
# fails, and returns once they are gone (ports free). Kirim finds the stand-in at META_PORT whatever .env says.
# Seeding logs a line per webhook it feeds in, the worker one per task: quiet, so the banner is what a
# newcomer sees (the receiver prints each event). The receiver reads its secret from the environment,
# not its command line, which any user of the machine can list.
run: install .env
	$(PY) manage.py migrate --noinput
	LOG_LEVEL=WARNING WEBHOOK_ALLOW_PRIVATE_URLS=true $(PY) manage.py seed_demo --base-url http://$(HOST):$(PORT) \
	  --meta-url http://$(HOST):$(META_PORT) --receiver-url http://$(HOST):$(RECEIVER_PORT)/kirim-events
	set -a; . ./.env; . ./.kirim-demo.env; META_GRAPH_URL=http://$(HOST):$(META_PORT)/v23.0; \
	WEBHOOK_ALLOW_PRIVATE_URLS=true; set +a; \
	exec $(PY) -m dev.run_together \
	  "stand-in: $(PY) -m fakemeta --host $(HOST) --port $(META_PORT) --webhook-url http://$(HOST):$(PORT)/webhooks/whatsapp" \
	  "receiver: $(PY) -m fakemeta.receiver --host $(HOST) --port $(RECEIVER_PORT)" \
	  "worker: env LOG_LEVEL=WARNING $(PY) manage.py db_worker --no-reload --interval 0.2" \
	  "kirim: $(PY) manage.py runserver $(HOST):$(PORT)"

# The npm libraries the suite runs (tests/node/), exactly as package-lock.json pins them. Without npm
# their tests skip, saying why (CI installs node and npm: .ci/run).
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund; \
	else echo "npm not found: the tests of the npm libraries will skip"; fi

# pytest exits 5 when a selection (PYTEST_ARGS) holds no test: say so rather than fail.
test: install .env node_modules/.package-lock.json
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests for: $(PYTEST_ARGS)"; exit 0; fi; exit $$status

# A local PostgreSQL with the role and database of the PostgreSQL test command (needs root).
postgres:
	bash .ci/postgres

# mypy loads the settings (mypy.ini), which insist on secrets: placeholders do, nothing runs.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	SECRET_KEY=typecheck META_APP_SECRET=typecheck META_WEBHOOK_VERIFY_TOKEN=typecheck $(VENV)/bin/mypy

# The documentation site (mkdocs.yml) into site/; any warning (a broken link, a page left out) fails it.
docs: install
	$(VENV)/bin/mkdocs build --strict

# Refresh the admin guide's screenshots from the browser tests (needs Debian's chromium and chromium-driver).
screenshots: install .env
	KIRIM_SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest receipts/tests/test_browser.py inbox/tests/test_browser_team.py

# Load, fault and scale benchmarks against PostgreSQL (a database they may fill: BENCH_DATABASE_URL).
# Results and the machine they ran on: docs/benchmarks.md.
bench: install .env
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/load.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/capacity.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/graph.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/batch_read.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/inbox.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/events_out.py
