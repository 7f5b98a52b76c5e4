# syntax=docker/dockerfile:1
# The trainer image: `speedrun train` under KubeRay (head and workers run `ray start` in it) and
# `speedrun run` anywhere. Build from the repository root:
#
#   docker build -f docker/trainer.Dockerfile --build-arg ACCELERATOR=cuda -t speedrun-trainer:cuda .
#
# Build arguments:
#   BASE_IMAGE   a Debian bookworm root filesystem (the public image by default; tests pass one made locally
#                with debootstrap). Python 3.11 comes from Debian's own packages, so any bookworm base works.
#   ACCELERATOR  cpu (default) | cuda | tpu: which JAX variant goes in, as the project's extra of that name.
#                Every version comes from the pins in pyproject.toml.
#   PIP_CERT     optional CA bundle for pip, for builds behind a TLS-inspecting proxy; the file must be
#                visible to the build (podman build -v /etc/ssl/certs:/host-certs:ro, or a bind mount).

ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------------------
# Build stage: a venv with the project and its `trainer` extra; compilers and pip caches stay here.
FROM ${BASE_IMAGE} AS build

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Debian bookworm's python3.11 is pinned by the base image's release; apt pins would break on point releases.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./

ARG ACCELERATOR=cpu
# pip reads PIP_CERT from the environment (build arguments are in RUN's), as do its build subprocesses.
ARG PIP_CERT=""
# The dependencies first, from pyproject.toml alone (empty packages stand in for the code): a change to the
# code then reinstalls only the project below, not its 2 GB of dependencies.
# ACCELERATOR names an extra of the project (pyproject.toml): cpu adds nothing to the trainer extra's CPU JAX;
# cuda and tpu add the same JAX version's CUDA 12 wheels or libtpu, resolved together with the project's pins.
# The project itself is a local path whose pins live in pyproject.toml, which DL3013 cannot see.
# hadolint ignore=DL3013
RUN case "${ACCELERATOR}" in \
        cpu|cuda|tpu) ;; \
        *) echo "ACCELERATOR must be cpu, cuda or tpu, not '${ACCELERATOR}'" >&2; exit 1 ;; \
    esac \
    && mkdir -p operator/speedrun_operator trainer/speedrun_trainer \
    && touch operator/speedrun_operator/__init__.py trainer/speedrun_trainer/__init__.py \
    && pip install "/src[trainer,${ACCELERATOR}]"

COPY operator/ operator/
COPY trainer/ trainer/
# hadolint ignore=DL3013
RUN pip install --no-deps --force-reinstall "/src[trainer]" \
    && pip check

# ---------------------------------------------------------------------------------------------------------
# Runtime stage: the base, Python 3.11, the venv, and what KubeRay's probes and Ray's tooling call.
FROM ${BASE_IMAGE} AS trainer

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# wget: KubeRay's readiness/liveness probes; procps: `ps`/`pkill`, used by `ray stop` and debugging.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 ca-certificates wget procps \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1000 --user-group --create-home --home-dir /home/speedrun --shell /bin/bash speedrun

# KubeRay runs `bash -lc "...; ray start ..."`: login shells get the venv on PATH through profile.d.
COPY docker/speedrun-venv.sh /etc/profile.d/speedrun-venv.sh
COPY --from=build /opt/venv /opt/venv

# Offline Hugging Face by default (the bundled tokenizer and data need no network); each is overridable at
# run time. Without git in the image, gitpython (imported by Levanter) must not try to find it.
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GIT_PYTHON_REFRESH=quiet \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    HOME=/home/speedrun

# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
WORKDIR /home/speedrun

# No ENTRYPOINT: KubeRay replaces the command with `bash -lc "ulimit ...; ray start ..."`.
CMD ["speedrun", "--help"]
