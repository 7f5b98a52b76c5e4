# Every target does its own set-up: a fresh clone needs only `make hello` or `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: venv hello test test-unit test-cluster test-e2e lint crd cluster-up cluster-down cluster-status clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@# The e2e tier's real node and image builds (tests/harness/node.py, images.py) need these Debian packages.
	@command -v podman >/dev/null && command -v containerd >/dev/null && command -v debootstrap >/dev/null \
	  && command -v nft >/dev/null && command -v conntrack >/dev/null && test -x /usr/lib/cni/bridge \
	  || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      podman runc containerd containernetworking-plugins conntrack nftables iptables debootstrap)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[operator,trainer,dev]"
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	@rm -f $(VENV)/.installed-* && touch $@

## The main job: train the bundled hello-world on this machine.
hello: venv
	$(VENV)/bin/speedrun run examples/hello-world-cpu.yaml

## Every tier: lint, types, unit, cluster, e2e.
## Two sessions: the cluster tier needs kwok-only pools (with the real node, KubeRay reaches for the fake pods'
## dashboards through the API server and fails their RayJobs before a test can report their state); the e2e
## tier runs beside a real kubelet node.
test: venv lint
	$(PY) -m pytest -m "unit or cluster" tests
	$(PY) -m pytest -m e2e tests

test-unit: venv
	$(PY) -m pytest -m unit tests

test-cluster: venv
	$(PY) -m pytest -m cluster tests

test-e2e: venv
	$(PY) -m pytest -m e2e tests

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy operator trainer tests bench

## Regenerate crds/ and the chart's copy from the pydantic models.
crd: venv
	$(VENV)/bin/speedrun crd --write

cluster-up: venv
	PYTHONPATH=tests $(PY) -m harness up --detach

cluster-down: venv
	PYTHONPATH=tests $(PY) -m harness down

cluster-status: venv
	PYTHONPATH=tests $(PY) -m harness status

## 500 SpeedrunJobs at once next to KubeRay alone with 500 RayJobs, on a fresh local cluster (minutes).
bench-operator: venv
	$(PY) bench/operator_scale.py

clean:
	rm -rf $(VENV) speedrun-output .pytest_cache .mypy_cache .ruff_cache
