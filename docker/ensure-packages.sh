#!/usr/bin/env bash
# Installs the Debian packages a make target needs, after saying why; a target that needs none of them never
# calls this. Fails with one clear line where it cannot install (not root, no apt-get).
#
#   docker/ensure-packages.sh WHY COMMAND[,COMMAND...] -- PACKAGE...
#
# COMMANDs are what the target runs (a name on PATH, or an absolute path that must be executable); when all
# are there nothing is installed.
set -euo pipefail

why=$1
IFS=, read -ra commands <<< "$2"
shift 2
[[ ${1:-} == -- ]] && shift

missing=()
for command in "${commands[@]}"; do
    if [[ $command == /* ]]; then
        [[ -x $command ]] || missing+=("$command")
    else
        command -v "$command" > /dev/null || missing+=("$command")
    fi
done
((${#missing[@]} == 0)) && exit 0

echo "${why}: ${missing[*]} not found; installing the Debian packages $*" >&2
if [[ $(id -u) != 0 ]]; then
    echo "error: installing system packages needs root: run this make target once as root, or install: $*" >&2
    exit 1
fi
if ! command -v apt-get > /dev/null; then
    echo "error: no apt-get on this machine: install the equivalents of these Debian packages: $*" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
