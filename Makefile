# multicast-proxy: top-level entry points.  See README.md.
#
#   make demo    the simulated-VPC demonstration (boots a VM)
#   make test    host unit tests + the VM tests against the real modules
#   make setup   what both need: Debian packages, the VM kernel kit, the venv
#   make rpm     the RPMs of the published guide (multi_server, multi_client, dkms)
#   make kernels build the modules against every kernel header set we can get
#
# KVER picks the Debian kernel the modules are built for and the VM boots;
# by default the ABI of the installed linux-headers-amd64.

SHELL      := /bin/bash
BUILD      := $(CURDIR)/build
VENV       := $(CURDIR)/.venv
PY         := $(VENV)/bin/python
KVER       ?= $(shell scripts/kver.sh)
KIT        := $(BUILD)/kit/$(KVER)
KDIR       ?= $(KIT)/build

export KVER

.PHONY: all setup deps kit venv modules test unit vmtest lint checkpatch bench demo rpm kernels \
	kernels-vmtest clean

all: modules

setup: deps kit venv

deps:
	scripts/setup-deps.sh

kit:
	scripts/setup-kit.sh $(KVER)

venv: $(VENV)/.done

$(VENV)/.done: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

modules:
	$(MAKE) -C kernel KDIR=$(KDIR)

unit: venv
	$(PY) -m pytest -q tests/unit

vmtest: setup modules
	$(PY) -m pytest -q tests/vm

test: setup modules
	$(PY) -m pytest -q tests/unit tests/vm

lint: venv
	$(VENV)/bin/ruff check multicast_admin tests
	$(VENV)/bin/ruff format --check multicast_admin tests

checkpatch:
	scripts/checkpatch.sh

bench: setup modules
	$(PY) -m tests.vm.bench

demo: setup modules
	$(PY) demo/run.py

# multi_server, multi_client and multicast-proxy-dkms RPMs for KVER (docs/packaging.md)
rpm: setup
	scripts/build-rpms.sh --kver $(KVER)

# both modules against Debian 5.10, 6.1 and 6.12 headers (docs/kernels.md)
kernels: deps
	scripts/kernels.sh build

# the VM tests on the 5.10 and 6.12 kernels too
kernels-vmtest: setup
	scripts/kernels.sh vmtest

clean:
	$(MAKE) -C kernel KDIR=$(KDIR) clean || true
	rm -rf $(BUILD)/vm
