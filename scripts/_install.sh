# Sourced by scripts/serve and scripts/test: a virtualenv in .venv with careline installed.
# Usage: install_python_deps EXTRAS   (EXTRAS like "" or "[test]")
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

apt_install() {
  # apt_install PACKAGE...: installs Debian packages (updating the index once).
  if ! command -v apt-get >/dev/null; then
    echo "careline: please install $* (no apt-get here)" >&2; return 1
  fi
  if [ -z "${_APT_UPDATED:-}" ]; then as_root apt-get update -qq; _APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

install_python_deps() {
  local extras="$1"
  local python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then "$python" -m venv .venv; fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
  python -m pip install -q --disable-pip-version-check --upgrade pip
  python -m pip install -q --disable-pip-version-check -e ".${extras}"
}
