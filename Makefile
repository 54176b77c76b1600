# Two commands matter: `make run` and `make test`. Both bootstrap .venv on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench lint typecheck lock clean system-packages

# Debian packages the tests run (HAProxy: tests/integration/cluster/test_haproxy.py;
# chromium and its driver: the console's browser tests, tests/integration/console),
# installed only when missing; with sudo when not root. Each command names its package.
SYSTEM_COMMANDS := haproxy chromium chromedriver
SYSTEM_PACKAGE_chromedriver := chromium-driver

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

# Serve options go in ARGS: make run ARGS="--mqtt-port 1883 --api-port 9443"
ARGS ?=

run: $(STAMP)
	$(BIN)/bastion serve $(ARGS)

test: $(STAMP) system-packages
	$(BIN)/pytest

system-packages:
	@missing=$$(for c in $(SYSTEM_COMMANDS); do command -v $$c >/dev/null || [ -x /usr/sbin/$$c ] || \
		case $$c in chromedriver) echo $(SYSTEM_PACKAGE_chromedriver);; *) echo $$c;; esac; done); \
	if [ -n "$$missing" ]; then \
		sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
		echo "installing Debian packages: $$missing"; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -qq -y \
			--no-install-recommends $$missing >/dev/null; \
	fi

bench: $(STAMP)
	$(BIN)/python bench/run.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Re-pin every dependency after editing pyproject.toml.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet -e '.[test]'
	.lockenv/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .hypothesis
