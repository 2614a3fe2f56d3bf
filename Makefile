# gaitrig: `make demo` runs the whole rig simulated on this machine; `make test` passes the tests.
# Both run `make setup` first: a venv in .venv with everything, Debian's mosquitto, the models.
VENV ?= .venv
PY := $(VENV)/bin/python
GAITRIG := $(VENV)/bin/gaitrig
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := mosquitto chromium fonts-dejavu-core

.PHONY: setup demo test bench docs clean

setup: $(VENV)/.installed
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	$(GAITRIG) models fetch

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(GAITRIG) demo

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/run_all.py

docs: setup
	$(GAITRIG) docs

clean:
	rm -rf $(VENV) build *.egg-info
