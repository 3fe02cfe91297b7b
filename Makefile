# The two set-up commands: `make test` and `make demo`. Both create .venv on a
# fresh machine with both sides of the system (`.[store,central]`, plus the test
# tools). torch is installed first, from the CPU wheel, so that nothing later
# pulls several GB of CUDA packages.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
# Two workers, whole files per worker: the integration files share session fixtures.
PYTEST_ARGS ?= -n 2 --dist loadfile
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the tests run for real: the headless browser and its driver,
# the MQTT broker (and mosquitto_passwd), plain mosquitto_sub as a third-party
# subscriber, systemd-analyze for the shipped units, OpenCV's sample videos (real footage with a hand count),
# PostgreSQL's server binaries (the tests start their own private cluster; the system service is never used).
SYSTEM_PACKAGES := chromium chromium-driver mosquitto mosquitto-clients systemd opencv-doc postgresql
# The demo runs the real broker; everything else it starts comes with the Python packages.
DEMO_PACKAGES := mosquitto
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: venv system-packages demo-packages test demo bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23"
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[store,central,test]"
	touch $(STAMP)

venv: $(STAMP)

# Installs the Debian packages of $(1) that are missing.
define install-missing
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

system-packages:
	$(call install-missing,$(SYSTEM_PACKAGES))

demo-packages:
	$(call install-missing,$(DEMO_PACKAGES))

test: venv system-packages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: venv demo-packages
	$(BIN)/python -m demo $(DEMO_ARGS)

bench: venv
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache demo-output
