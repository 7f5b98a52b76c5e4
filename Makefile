# Every target does its own set-up: a fresh clone needs only `make hello` or `make test`.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: venv hello test test-unit test-cluster test-e2e e2e-packages images lint crd cluster-up cluster-down \
	cluster-status bench-operator clean

# Python packages only: no root, no system packages (the hello-world needs nothing else).
venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[operator,trainer,dev]"
	@rm -f $(VENV)/.installed-* && touch $@

## What the e2e tier runs besides Python, installed with apt when missing (root only; each says why):
## podman and debootstrap build the images (tests/harness/images.py), containerd, runc, the CNI plugins,
## conntrack, nftables and iptables run the real kubelet node (tests/harness/node.py), chromium renders the
## leaderboard page.
e2e-packages:
	@docker/ensure-packages.sh "the e2e tier builds the images with podman from a debootstrap base" \
	  podman,runc,debootstrap -- podman runc debootstrap
	@docker/ensure-packages.sh "the e2e tier's real node runs pods with containerd, runc and the CNI plugins" \
	  containerd,runc,nft,iptables,conntrack,/usr/lib/cni/bridge -- \
	  containerd runc containernetworking-plugins conntrack nftables iptables
	@docker/ensure-packages.sh "the e2e tier renders the leaderboard page in headless chromium" \
	  chromium -- chromium

## The operator image and the trainer image for ACCELERATOR (cpu, cuda or tpu), named REGISTRY/speedrun-...;
## PUSH=1 pushes them. With podman, or docker when that is installed; podman is installed with apt if neither is.
ACCELERATOR ?= cpu
REGISTRY    ?= localhost
TAG         ?= $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' pyproject.toml | head -n 1)
images:
	@command -v docker >/dev/null || docker/ensure-packages.sh "make images builds with podman (or docker)" \
	  podman,runc -- podman runc
	docker/build.sh --accelerator $(ACCELERATOR) --registry $(REGISTRY) --tag $(TAG) $(if $(PUSH),--push)

## The main job: train the bundled hello-world on this machine.
hello: venv
	$(VENV)/bin/speedrun run examples/hello-world-cpu.yaml

## Every tier: lint, types, unit, cluster, e2e.
## Two sessions: the cluster tier needs kwok-only pools (with the real node, KubeRay reaches for the fake pods'
## dashboards through the API server and fails their RayJobs before a test can report their state); the e2e
## tier runs beside a real kubelet node.
test: venv e2e-packages lint
	$(PY) -m pytest -m "unit or cluster" tests
	$(PY) -m pytest -m e2e tests

test-unit: venv
	$(PY) -m pytest -m unit tests

test-cluster: venv
	$(PY) -m pytest -m cluster tests

test-e2e: venv e2e-packages
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
