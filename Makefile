# multicast-proxy: top-level entry points.  See README.md.
#
#   make demo       the simulated-VPC demonstration (boots a VM)
#   make test       host unit tests + the VM tests against the real modules
#   make setup      what both need: Debian packages, the VM kernel kit, the venv
#   make rpm        the RPMs of the published guide (multi_server, multi_client,
#                   multicast-proxy-tools, multicast-proxy-dkms)
#   make kernels    build the modules against every kernel header set we can get
#   make fuzz       the generic netlink fuzzer in the VM, N messages per family
#                   (default 100000; `make fuzz N=1000000 SEED=...`)
#   make soak       100 load/unload cycles and 100 namespaces under traffic
#                   (CYCLES=, NAMESPACES= override)
#   make cleanroom  make demo and make test in a fresh Debian 12 root (what CI runs)
#   make demo-fleet the simulated VPC configured by etcd and agents alone (boots a VM)
#   make bench-fleet    N agents (default 1000) on a real etcd, fake kernels, on
#                   the host (GROUPS=, SENDERS=, WORKERS=, RAMP=, TTL=, IDLE_POLL=
#                   override; docs/performance.md has the 1,000-agent command)
#   make bench-fleet-vm the VM fleet test with CYCLES joins and leaves timed
#                   (default 50)
#
# KVER picks the Debian kernel the modules are built for and the VM boots;
# by default the ABI of the installed linux-headers-amd64.
#
# Nothing here is computed from installed packages when make starts: on a
# fresh machine the headers that name the default KVER arrive with `make
# deps`, so every recipe asks scripts/kver.sh itself, when it runs, after its
# prerequisites (`make KVER=...` overrides it).

SHELL      := /bin/bash
BUILD      := $(CURDIR)/build
VENV       := $(CURDIR)/.venv
PY         := $(VENV)/bin/python
# The VM test files run VM_JOBS at a time (pytest-xdist, one file per worker):
# most VMs are single-threaded TCG, one host core each.  VM_JOBS=0: one by one.
VM_JOBS    ?= 2
VMOPTS      = -n $(VM_JOBS) --dist loadfile --no-loadscope-reorder --durations=20

ifdef KVER
export KVER
endif
# Shell text for a recipe: `kver=$(kver) &&` sets $$kver or fails with
# kver.sh's message; then $(kdir) is the kernel's build tree in the kit.
kver       := $${KVER:-$$(scripts/kver.sh)}
kdir       := $${KDIR:-$(BUILD)/kit/$$kver/build}

.PHONY: all setup deps kit venv etcd modules test unit vmtest lint checkpatch bench fuzz soak demo \
	demo-fleet bench-fleet bench-fleet-vm rpm kernels \
	kernels-vmtest cleanroom clean

all: modules

setup: deps kit venv etcd

deps:
	scripts/setup-deps.sh

kit: deps
	kver=$(kver) && scripts/setup-kit.sh "$$kver"

venv: $(VENV)/.done

# Debian's etcd, unpacked under build/tools/etcd for the fleet tests (never installed)
etcd: deps
	scripts/setup-etcd.sh >/dev/null

$(VENV)/.done: pyproject.toml | deps
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

modules:
	kver=$(kver) && $(MAKE) -C kernel KDIR="$(kdir)"

unit: venv etcd
	$(PY) -m pytest -q tests/unit

vmtest: setup
	$(MAKE) modules
	$(PY) -m pytest -q $(VMOPTS) tests/vm

test: setup
	$(MAKE) modules
	$(PY) -m pytest -q tests/unit
	$(PY) -m pytest -q $(VMOPTS) tests/vm

lint: venv
	$(VENV)/bin/ruff check multicast_admin tests demo
	$(VENV)/bin/ruff format --check multicast_admin tests demo

checkpatch:
	scripts/checkpatch.sh

bench: setup
	$(MAKE) modules
	$(PY) -m tests.vm.bench

# the long runs of tests/vm/test_fuzz.py and tests/vm/test_soak.py (make test
# runs short ones); README.md "Fuzzing and soak"
fuzz: setup
	$(MAKE) modules
	MCP_FUZZ_N=$(or $(N),100000) MCP_FUZZ_SEED=$(SEED) $(PY) -m pytest -q -s tests/vm/test_fuzz.py

soak: setup
	$(MAKE) modules
	MCP_SOAK_CYCLES=$(or $(CYCLES),100) MCP_SOAK_NAMESPACES=$(or $(NAMESPACES),100) \
		$(PY) -m pytest -q -s tests/vm/test_soak.py

demo: setup
	$(MAKE) modules
	$(PY) demo/run.py

# the demo's VPC configured by `multicast-proxy group add` and agents alone
demo-fleet: setup
	$(MAKE) modules
	$(PY) demo/run.py --guest demo/fleet.py

# the fleet at scale on the host: a real etcd, the real agent, fake kernels
# (tests/fleet_bench.py; docs/performance.md)
bench-fleet: venv etcd
	$(PY) -m tests.fleet_bench --agents $(or $(N),1000) --groups $(or $(GROUPS),10) \
		--senders $(or $(SENDERS),10) --workers $(or $(WORKERS),8) --ramp $(or $(RAMP),0) \
		--ttl $(or $(TTL),10) $(if $(IDLE_POLL),--idle-poll $(IDLE_POLL))

# the VM fleet test with the convergence figure over CYCLES joins and leaves
bench-fleet-vm: setup
	$(MAKE) modules
	MCP_FLEET_CYCLES=$(or $(CYCLES),50) $(PY) -m pytest -q -s tests/vm/test_fleet.py

# multi_server, multi_client, multicast-proxy-tools and multicast-proxy-dkms
# for KVER (docs/packaging.md)
rpm: setup
	kver=$(kver) && scripts/build-rpms.sh --kver "$$kver"

# both modules against Debian 5.10, 6.1 and 6.12 headers (docs/kernels.md)
kernels: deps
	scripts/kernels.sh build

# the VM tests on the 5.10 and 6.12 kernels too
kernels-vmtest: setup
	scripts/kernels.sh vmtest

# a fresh Debian 12 root, a clean clone of this repository's HEAD in it, and
# the README's commands run there as written (scripts/cleanroom.sh)
cleanroom:
	scripts/cleanroom.sh

clean:
	kver=$$(scripts/kver.sh 2>/dev/null) && [ -f "$(kdir)/Makefile" ] && \
		$(MAKE) -C kernel KDIR="$(kdir)" clean || true
	rm -rf $(BUILD)/vm
