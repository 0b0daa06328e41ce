# One command runs the system locally, one runs every test. See README.md.
SHELL := /bin/bash
VENV := .tools/venv
EMULATOR := .tools/emulator
FUZZ := .tools/fuzz
BROWSER := tests/browser
PY := $(VENV)/bin/python
UV := .tools/uv/bin/uv

.PHONY: dev test deploy fuzz tools cloud-tools lint unit clean build-aws debian-packages

## make dev: emulator + stack + demo practice + carrier simulator, in the foreground
dev: cloud-tools
	$(PY) infra/local.py dev

## make test: every test (unit, adapter, end-to-end), starting and stopping what it needs
test: tools
	$(PY) infra/local.py test

## make fuzz: the contract fuzzer at its full budget (100 cases per operation,
## `make test` runs 15) against the cloud `make dev` is running
fuzz: cloud-tools
	$(PY) infra/local.py fuzz

## make deploy: rebuild and redeploy into the cloud `make dev` is running
deploy: cloud-tools
	$(PY) infra/local.py deploy

## make build-aws: sam build for AWS (ARCH=arm64 by default), bootstraps checked
build-aws: cloud-tools
	$(PY) infra/aws_build.py

## make unit: the fast tests only (no local cloud)
unit:
	cargo test --profile local --workspace

## make lint: formatting, clippy, template checks
lint: cloud-tools
	cargo fmt --all -- --check
	cargo clippy --profile local --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint --region us-east-1 --template-file template.yaml

## make tools: pinned local-cloud tools into .tools/ (skipped when up to date),
## for the console's browser tests Debian's chromium and playwright-core, and
## Debian's faketime (the unit tests run again with the clock moved ahead)
tools: cloud-tools debian-packages $(BROWSER)/node_modules/.installed

# Debian's chromium (Playwright's own browser download is not used) and
# faketime, in one apt-get run, only when one is missing.
debian-packages:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v faketime >/dev/null || missing="$$missing faketime"; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

cloud-tools: $(VENV)/.installed $(EMULATOR)/.installed $(FUZZ)/.installed

# The Python tools are installed by uv (pinned in infra/requirements-uv.txt),
# not pip: the same pinned requirements, resolved and installed in seconds
# instead of minutes (SAM CLI alone took pip over 6 minutes on a fresh machine).
$(UV): infra/requirements-uv.txt
	python3 -m venv .tools/uv
	.tools/uv/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-uv.txt
	touch $@

$(VENV)/.installed: infra/requirements.txt $(UV)
	$(UV) venv --quiet --allow-existing --python python3 $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet -r infra/requirements.txt
	touch $@

$(EMULATOR)/.installed: infra/requirements-emulator.txt $(UV)
	$(UV) venv --quiet --allow-existing --python python3 $(EMULATOR)
	VIRTUAL_ENV=$(EMULATOR) $(UV) pip install --quiet -r infra/requirements-emulator.txt
	touch $@

$(FUZZ)/.installed: infra/requirements-fuzz.txt $(UV)
	$(UV) venv --quiet --allow-existing --python python3 $(FUZZ)
	VIRTUAL_ENV=$(FUZZ) $(UV) pip install --quiet -r infra/requirements-fuzz.txt
	touch $@

# The pinned npm packages of package-lock.json.
$(BROWSER)/node_modules/.installed: $(BROWSER)/package-lock.json
	cd $(BROWSER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf .aws-sam .local
