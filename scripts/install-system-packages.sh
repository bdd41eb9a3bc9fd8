#!/usr/bin/env bash
# Installs the Debian packages the lab needs when they are missing. As root it runs apt-get;
# otherwise it prints the exact command and fails, so nothing half-works later.
set -euo pipefail
missing=()
for pkg in "$@"; do
  case "$pkg" in
    # Node may come from another source (e.g. NodeSource); what matters is the commands.
    nodejs) command -v node >/dev/null 2>&1 || missing+=("$pkg") ;;
    npm) command -v npm >/dev/null 2>&1 || missing+=("$pkg") ;;
    *) dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg") ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
