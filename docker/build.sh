#!/usr/bin/env bash
# Builds the project's images: the operator image and the trainer image for one accelerator, with podman or
# docker, from the repository root; with --push, pushes them to the registry they are named for. The e2e tier
# builds its images with this same script (tests/harness/images.py).
#
#   docker/build.sh [--accelerator cpu|cuda|tpu] [--registry REGISTRY] [--tag TAG] [--only operator|trainer]
#                   [--engine "podman|docker [global flags]"] [--base-image IMAGE] [--push] [-- BUILD-FLAGS...]
#
#   REGISTRY/speedrun-operator:TAG                  docker/operator.Dockerfile
#   REGISTRY/speedrun-trainer:TAG-ACCELERATOR      docker/trainer.Dockerfile, --build-arg ACCELERATOR
#
# Defaults: cpu, localhost (the engine's local store), the project's version from pyproject.toml, podman if
# installed else docker. BUILD-FLAGS go to the engine's build as they are (--network=host, --build-arg ...).
# Example, for GKE:
#
#   docker/build.sh --accelerator cuda --registry us-docker.pkg.dev/MY_PROJECT/speedrun --push
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
accelerator=cpu
registry=localhost
tag=$(sed -n 's/^version = "\(.*\)"$/\1/p' "${root}/pyproject.toml" | head -n 1)
only=""
engine=${CONTAINER_ENGINE:-}
base_image=""
push=false
build_flags=()
while (($#)); do
    case $1 in
        --accelerator) accelerator=${2:?}; shift 2 ;;
        --registry) registry=${2:?}; shift 2 ;;
        --tag) tag=${2:?}; shift 2 ;;
        --only) only=${2:?}; shift 2 ;;
        --engine) engine=${2:?}; shift 2 ;;
        --base-image) base_image=${2:?}; shift 2 ;;
        --push) push=true; shift ;;
        --) shift; build_flags=("$@"); break ;;
        -h | --help) usage ;;
        *) echo "docker/build.sh: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
    esac
done
case $accelerator in
    cpu | cuda | tpu) ;;
    *) echo "docker/build.sh: --accelerator must be cpu, cuda or tpu, not '${accelerator}'" >&2; exit 2 ;;
esac
case $only in
    "" | operator | trainer) ;;
    *) echo "docker/build.sh: --only must be operator or trainer, not '${only}'" >&2; exit 2 ;;
esac
if [[ -z $engine ]]; then
    if command -v podman > /dev/null; then
        engine=podman
    elif command -v docker > /dev/null; then
        engine=docker
    else
        echo "docker/build.sh: neither podman nor docker is installed (make images installs podman)" >&2
        exit 1
    fi
fi
read -ra engine_argv <<< "$engine"

common=("${build_flags[@]}")
[[ -n $base_image ]] && common+=("--build-arg=BASE_IMAGE=${base_image}")
# podman's default OCI format drops SHELL, and the Dockerfiles' RUN lines need bash with pipefail.
[[ $(basename "${engine_argv[0]}") == podman ]] && common+=(--format=docker)

built=()
build() { # dockerfile ref [flags...]
    local dockerfile=$1 ref=$2
    shift 2
    echo "docker/build.sh: building ${ref} (${dockerfile})" >&2
    "${engine_argv[@]}" build "${common[@]}" "$@" --file="${root}/${dockerfile}" --tag="${ref}" "${root}"
    built+=("$ref")
}
if [[ $only != trainer ]]; then
    build docker/operator.Dockerfile "${registry}/speedrun-operator:${tag}"
fi
if [[ $only != operator ]]; then
    build docker/trainer.Dockerfile "${registry}/speedrun-trainer:${tag}-${accelerator}" \
        "--build-arg=ACCELERATOR=${accelerator}"
fi
if $push; then
    for ref in "${built[@]}"; do
        "${engine_argv[@]}" push "$ref"
    done
fi
printf 'built %s\n' "${built[@]}"
