#!/usr/bin/env bash
# Installs Debian packages whose command (or file, for an absolute path) is missing.
# Arguments: command:package pairs.
set -euo pipefail
missing=()
for pair in "$@"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  # A command name is looked up on PATH; an absolute path (a jar, say) must exist.
  if [[ $cmd == /* ]]; then [ -e "$cmd" ] || missing+=("$pkg")
  else command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages: ${missing[*]} — run as root, or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing with apt-get: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
