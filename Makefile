# Every target works on a fresh machine with only python3: it makes .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# what the install depends on
BUILD_INPUTS := pyproject.toml
STAMP := $(VENV)/.installed-$(shell cat $(BUILD_INPUTS) | cksum | cut -d' ' -f1)

.PHONY: test demo demo-fleet demo-stores docs bench lint clean dist fuzz services

$(STAMP): $(BUILD_INPUTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# the real services the tests start on free 127.0.0.1 ports, from Debian's packages
services:
	@command -v redis-server >/dev/null || { \
	  apt-get install -y -qq redis-server >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq redis-server; }; }
	@command -v redis-server >/dev/null || { echo "redis-server could not be installed" >&2; exit 1; }

# the suite starts dozens of Python processes (servers, workers, the README's programs): let
# them cache bytecode even where the environment says not to; worksteal: a few tests are long
test: $(STAMP) lint services
	PYTHONDONTWRITEBYTECODE= $(PY) -m pytest -q -n 4 --dist worksteal --cov --cov-fail-under=93

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples fuzz
	$(VENV)/bin/ruff format --check src tests benchmarks examples fuzz
	$(VENV)/bin/mypy

demo: $(STAMP)
	$(PY) examples/demo.py

# two workers sharing revocations through a real Redis: a sign-out seen by both, an outage
demo-fleet: $(STAMP) services
	$(PY) examples/fleet.py

# one RedisStore per deployment (URL, TLS + ACL user, Sentinel through a failover, Cluster)
demo-stores: $(STAMP) services
	$(PY) examples/stores.py

# the documentation site from docs/ and the docstrings; a broken page or reference fails
docs: $(STAMP)
	@$(PY) -c "import mkdocs, material, mkdocstrings_handlers.python" 2>/dev/null || \
	  $(PY) -m pip install --quiet --disable-pip-version-check -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir build/site

bench: $(STAMP)
	$(PY) benchmarks/verify.py
	$(PY) benchmarks/middleware.py --e2e
	$(PY) benchmarks/wsgi.py
	$(PY) benchmarks/providers.py

# coverage-guided fuzzing (atheris), FUZZ_SECONDS per target; not part of `make test`
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	@$(PY) -c "import atheris" 2>/dev/null || $(PY) -m pip install --quiet --disable-pip-version-check atheris
	$(PY) fuzz/seed_corpus.py
	for target in verify extract jwks; do \
	  $(PY) fuzz/fuzz_targets.py $$target -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 fuzz/corpus/$$target || exit 1; \
	done

# a pure-Python wheel (py3-none-any) and an sdist, from the PEP 517 backend
dist: $(STAMP)
	rm -rf dist && $(PY) -m build --outdir dist

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
