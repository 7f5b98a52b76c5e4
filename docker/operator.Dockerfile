# syntax=docker/dockerfile:1
# The operator image: `speedrun operator` (kopf) with the `operator` extra only: no JAX, Levanter or Ray.
# Build from the repository root:
#
#   docker build -f docker/operator.Dockerfile -t speedrun-operator .
#
# It runs with a read-only root filesystem: nothing writes outside /tmp (HOME points there, no bytecode is
# written at run time). Metrics are served on 8080 (SPEEDRUN_METRICS_PORT).
#
# Build arguments:
#   BASE_IMAGE   a Debian bookworm root filesystem (the public image by default; tests pass one made locally).
#   PIP_CERT     optional CA bundle for pip, for builds behind a TLS-inspecting proxy; the file must be
#                visible to the build (podman build -v /etc/ssl/certs:/host-certs:ro, or a bind mount).

ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------------------
# Build stage: a venv with the project and its `operator` extra.
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
COPY operator/ operator/
COPY trainer/ trainer/

# pip reads PIP_CERT from the environment (build arguments are in RUN's), as do its build subprocesses.
ARG PIP_CERT=""
# The project is a local path whose pins live in pyproject.toml, which DL3013 cannot see.
# hadolint ignore=DL3013
RUN pip install "/src[operator]" \
    && pip check

# ---------------------------------------------------------------------------------------------------------
# Runtime stage: the base, Python 3.11 and the venv.
FROM ${BASE_IMAGE} AS operator

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1000 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin speedrun

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp

# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
WORKDIR /tmp

EXPOSE 8080

CMD ["speedrun", "operator"]
