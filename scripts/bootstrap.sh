#!/usr/bin/env bash
# Builds .venv from requirements.lock on a fresh machine: finds a Python 3.10 (TFX 1.16 needs
# <3.11), gets uv (pinned) into .tools/, syncs the lock, installs the project editable.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9

find_python310() {
  local candidate
  for candidate in "${BEAMLINE_PYTHON:-}" python3.10; do
    if [[ -n "$candidate" ]] && command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10; do
    if [[ -x "$candidate" ]] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  if command -v uv >/dev/null 2>&1 && uv python find 3.10 >/dev/null 2>&1; then
    uv python find 3.10; return 0
  fi
  return 1
}

if ! PY310=$(find_python310); then
  cat >&2 <<'MSG'
error: Beamline needs Python 3.10 (TFX 1.16 supports only Python >=3.9,<3.11) and none was found
on PATH, in pyenv's versions, or through `uv python find 3.10`. Install one, for example
`pyenv install 3.10.13` or `uv python install 3.10`, or point BEAMLINE_PYTHON at a 3.10 interpreter,
then run the command again.
MSG
  exit 1
fi

if [[ ! -x .tools/bin/uv ]]; then
  echo "bootstrap: installing uv ${UV_VERSION} into .tools/ (using ${PY310})"
  "$PY310" -m venv .tools
  .tools/bin/pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
fi
UV=.tools/bin/uv

if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
  rm -rf .venv
  "$UV" venv --quiet -p "$PY310" .venv
fi
echo "bootstrap: syncing .venv with requirements.lock"
# Byte-compiled once here: with PYTHONDONTWRITEBYTECODE set (as in some CI/sandbox shells) Python
# never caches .pyc, so every run would compile TF/TFX/Beam from source again (importing the
# pipeline and runner: 16 s CPU from source, 6.5 s from .pyc). Existing .pyc are read regardless.
"$UV" pip sync --quiet --compile-bytecode --python .venv/bin/python requirements.lock
"$UV" pip install --quiet --python .venv/bin/python --no-deps -e .
touch .venv/.bootstrapped
echo "bootstrap: ready (.venv, Python $(.venv/bin/python -c 'import platform; print(platform.python_version())'))"
