# The one entry point. Needs only Python 3.11+, Node 18+ and make: the first run sets up a
# virtual environment (.venv, from requirements.txt) and the Node packages (node_modules,
# from package-lock.json) by itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test bench run setup clean

test: setup
	$(PY) tools/run_tests.py

bench: setup
	$(PY) tools/bench.py

# The client on this host with real UDP: make run [SERVER=coap://host:port] [ENDPOINT=name]
SERVER ?= coap://127.0.0.1:5683
RUN_ARGS = --server $(SERVER) $(if $(ENDPOINT),--endpoint $(ENDPOINT))
run: $(VENV)/.installed
	$(PY) tools/host_run.py $(RUN_ARGS)

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	node -e 'if (+process.versions.node.split(".")[0] < 18) { console.error("Node 18 or newer is needed"); process.exit(1) }'
	npm ci --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) node_modules build .pytest_cache .hypothesis
