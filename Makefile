# One command runs the system locally, one runs every test. See README.md.
SHELL := /bin/bash
VENV := .tools/venv
EMULATOR := .tools/emulator
FUZZ := .tools/fuzz
BROWSER := tests/browser
PY := $(VENV)/bin/python

.PHONY: dev test deploy tools cloud-tools lint unit clean build-aws

## make dev: emulator + stack + demo practice + carrier simulator, in the foreground
dev: cloud-tools
	$(PY) infra/local.py dev

## make test: every test (unit, adapter, end-to-end), starting and stopping what it needs
test: tools
	$(PY) infra/local.py test

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
## and for the console's browser tests Debian's chromium and playwright-core
tools: cloud-tools $(BROWSER)/node_modules/.installed

cloud-tools: $(VENV)/.installed $(EMULATOR)/.installed $(FUZZ)/.installed

$(VENV)/.installed: infra/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $@

$(EMULATOR)/.installed: infra/requirements-emulator.txt
	python3 -m venv $(EMULATOR)
	$(EMULATOR)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-emulator.txt
	touch $@

$(FUZZ)/.installed: infra/requirements-fuzz.txt
	python3 -m venv $(FUZZ)
	$(FUZZ)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-fuzz.txt
	touch $@

# Debian's chromium (Playwright's own browser download is not used) and the
# pinned npm packages of package-lock.json.
$(BROWSER)/node_modules/.installed: $(BROWSER)/package-lock.json
	@command -v chromium >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }
	cd $(BROWSER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf .aws-sam .local
