#!/usr/bin/env bash
# Installs checkov into its own venv, .tools/checkov-venv, from the pinned requirements-checkov.txt.
# Its own venv because checkov's pins conflict with the Airflow environment in .venv.
# Idempotent: a stamp holding the requirements file's hash makes a second run a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUIREMENTS=requirements-checkov.txt
VENV=.tools/checkov-venv
STAMP="$VENV/.installed"
UV=${UV:-.venv/bin/uv}
PYTHON=${PYTHON:-python3}

wanted=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)
if [ -x "$VENV/bin/checkov" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ]; then
  exit 0
fi
if [ ! -x "$UV" ]; then
  echo "uv not found at $UV: run 'make install' first (it installs uv into .venv)" >&2
  exit 1
fi

echo "installing checkov into $VENV"
mkdir -p .tools
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$UV" pip install --python "$VENV/bin/python" -q -r "$REQUIREMENTS"
echo "$wanted" > "$STAMP"
