# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := prometheus prometheus-alertmanager chromium strace systemd nginx

.PHONY: run test coverage lint typecheck bench deps system-deps clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

deps: $(STAMP)

# Debian's prometheus, promtool, alertmanager and amtool for the alerting tests; chromium for
# the status page in a browser; strace and systemd-analyze (systemd) for the tests that use
# them; nginx for the stream probe behind a real proxy (tests/probes/sse/test_real_servers.py).
# Under CI (CI set) a test whose tool is missing fails rather than skips.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

run: deps
	$(BIN)/synthmon demo

# The suite in TEST_WORKERS processes (pytest-xdist), a test file to a worker: most tests
# wait on sockets, timers and child processes rather than compute, so three workers on two
# cores finish in about half the time of one. Each worker enters a loopback-only network
# namespace of its own (tests/support/netguard.py), so their ports and egress counters
# never meet. Files are handed out longest first, in the order tests/conftest.py collects
# them (tests/support/schedule.py), so that no long file starts last and runs alone at the
# end. TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 3
PYTEST_ARGS = -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test: deps system-deps
	$(BIN)/ruff check monitor tests bench
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

# The suite once more under coverage (line and branch, subprocesses included), in one
# process (not yet tried with the xdist workers): a few minutes more than `make test`,
# hence not part of it. Without the two tests of throughput
# under load (the storm, the short soak): tracing slows the daemon past their timeouts.
coverage: deps system-deps
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -q -k "not keeps_its_schedule and not short_soak"
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

lint: deps
	$(BIN)/ruff check monitor tests bench

typecheck: deps
	$(BIN)/mypy

bench: deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
