#!/usr/bin/env bash
# make setup: everything homae_ros needs, from nothing, into .venv/ and install/.
#
#   1. checks the Python (the ROS 2 wheels on PyPI are built for CPython 3.11);
#   2. creates .venv and installs the pinned dependencies (requirements/*.txt);
#      skipped when the pins have not changed since the last run;
#   3. applies the two build fixes the PyPI ROS wheels need (see docs/environment.md);
#   4. builds the ROS package (messages + Python + launch/config) with colcon into install/,
#      plus the tf2_msgs stand-in when no real tf2_msgs is installed;
#      skipped when nothing it installs has changed.
#
# Environment: PYTHON (interpreter to build the venv from, default python3.11 or python3),
# HOMAE_SETUP_FORCE=1 (redo every step), HOMAE_VENV (venv location, default .venv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${HOMAE_VENV:-$ROOT/.venv}"  # HOMAE_VENV: another location (tests use it)
LOG_DIR="$(dirname "$VENV")/log/setup"
mkdir -p "$LOG_DIR"

say() { printf '[setup] %s\n' "$*"; }
die() {
  printf '\n[setup] ERROR: %s\n' "$1" >&2
  shift
  for line in "$@"; do printf '[setup]   %s\n' "$line" >&2; done
  exit 1
}

# --- 1. Python ---------------------------------------------------------------------------------
if [ -z "${PYTHON:-}" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "no Python interpreter '$PYTHON' found." \
  "Install CPython 3.11 (Debian/Ubuntu: apt-get install python3.11 python3.11-venv)" \
  "or point PYTHON at one: make setup PYTHON=/path/to/python3.11"
PYVER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$PYVER" != "3.11" ]; then
  die "$PYTHON is Python $PYVER, but the ROS 2 wheels on PyPI (ros-rclpy & co.) exist only for CPython 3.11." \
    "Install python3.11 and run: make setup PYTHON=python3.11" \
    "Or, with ROS 2 Jazzy or newer from apt, use the colcon workspace route in the README."
fi

# --- 2. Virtual environment and pinned dependencies -------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV" || die "could not create a virtual environment with $PYTHON." \
    "Debian/Ubuntu: apt-get install python3.11-venv"
fi
# colcon must never crawl into the venv (the ROS wheels ship package.xml files).
touch "$VENV/COLCON_IGNORE"

pip_install() {
  # pip_install LABEL ARGS...: install quietly, explain the failure if it fails.
  local label="$1"; shift
  local log="$LOG_DIR/pip-$label.log"
  say "pip install ($label)"
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "$@" >"$log" 2>&1; then
    tail -n 15 "$log" >&2
    # "from versions: none": the index listed nothing at all, which for these well-known
    # packages means it was not reached (offline, proxy, firewall) or is an incomplete mirror.
    if grep -qiE "from versions: none|connection|resolve|timed out|Network is unreachable|Temporary failure" "$log"; then
      die "pip could not reach the package index while installing '$label' (full log: $log)." \
        "make setup needs network access to PyPI (check proxy/firewall settings), or a mirror:" \
        "export PIP_INDEX_URL=<mirror> and run make setup again."
    fi
    if grep -qiE "No matching distribution|Could not find a version" "$log"; then
      die "a pinned package for '$label' does not exist for this platform/Python (full log: $log)." \
        "The pins in requirements/$label.txt are for Linux x86_64/aarch64 and CPython 3.11."
    fi
    die "pip failed while installing '$label' (full log: $log)."
  fi
}

DEPS_STAMP="$(cat requirements/*.txt setup.py | sha256sum | cut -d' ' -f1)"
if [ "${HOMAE_SETUP_FORCE:-0}" = 1 ] || [ "$(cat "$VENV/.homae-deps" 2>/dev/null)" != "$DEPS_STAMP" ]; then
  pip_install torch -r requirements/torch.txt
  pip_install core -r requirements/core.txt -r requirements/ros.txt -r requirements/dev.txt
  pip_install smplx --no-deps -r requirements/smplx.txt
  # The project itself, editable, for the console scripts (homae-train, homae-eval, ...).
  pip_install project --no-deps --no-build-isolation -e .
  echo "$DEPS_STAMP" >"$VENV/.homae-deps"
else
  say "dependencies up to date (requirements/*.txt unchanged)"
fi

# --- 3. Fixes for the PyPI ROS wheels ----------------------------------------------------------
# (a) the rosidl Python generator's CMake exports name the wheel builder's Python include dirs;
#     point them at this venv's Python and numpy or CMake stops with "non-existent path".
PY_INC="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
#     CMake also refuses exported include paths inside the source tree (where .venv lives), so
#     numpy's headers are reached through a link outside it.
NP_INC_REAL="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
NP_LINK_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/homae_ros/$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
mkdir -p "$NP_LINK_DIR"
ln -sfn "$NP_INC_REAL" "$NP_LINK_DIR/numpy-include"
NP_INC="$NP_LINK_DIR/numpy-include"
shopt -s nullglob
for f in "$VENV"/share/*/cmake/*__rosidl_generator_pyExport.cmake; do
  # Rewrites the wheel builder's paths (first run) or an earlier run's (venv moved or rebuilt).
  sed -i -E 's#INTERFACE_INCLUDE_DIRECTORIES "[^"]*"#INTERFACE_INCLUDE_DIRECTORIES "'"${PY_INC};${NP_INC}"'"#' "$f"
done
shopt -u nullglob
# (b) rosidl finds its type supports through AMENT_PREFIX_PATH: the venv is the ROS prefix.
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export PATH="$VENV/bin:$PATH"
export VIRTUAL_ENV="$VENV"

# --- 4. colcon build ---------------------------------------------------------------------------
PATHS=("$ROOT")
if ! "$VENV/bin/python" -c "import tf2_msgs.msg" >/dev/null 2>&1; then
  PATHS+=("$ROOT/tests/stubs/ros/tf2_msgs")  # stand-in, only where no real tf2_msgs exists
fi
STAMPED=()
for p in msg CMakeLists.txt package.xml launch config rviz scripts/homae_node scripts/homae_lifecycle_node tests/stubs/ros; do
  [ -e "$p" ] && STAMPED+=("$p")
done
# Python files and weights are symlinked into install/ (--symlink-install): only adding or removing one needs
# a rebuild, so their names count, not their contents.
BUILD_STAMP="$( (printf '%s\n' "${PATHS[@]}"; find "${STAMPED[@]}" -type f -print0 | sort -z \
  | xargs -0 sha256sum; find homae_ros homae_model weights -type f -not -path '*/__pycache__/*' 2>/dev/null | sort || true) \
  | sha256sum | cut -d' ' -f1)"
if [ "${HOMAE_SETUP_FORCE:-0}" = 1 ] || [ ! -f install/setup.bash ] \
    || [ "$(cat install/.homae-build 2>/dev/null)" != "$BUILD_STAMP" ]; then
  say "colcon build (messages, Python packages, launch/config) -> install/"
  if ! "$VENV/bin/colcon" build --symlink-install --paths "${PATHS[@]}" \
      --event-handlers console_direct- --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DPython3_NumPy_INCLUDE_DIR="$NP_INC" \
      -DBUILD_TESTING=OFF >"$LOG_DIR/colcon.log" 2>&1; then
    tail -n 30 "$LOG_DIR/colcon.log" >&2
    die "colcon build failed (full log: $LOG_DIR/colcon.log)."
  fi
  echo "$BUILD_STAMP" >install/.homae-build
else
  say "install/ up to date"
fi

# --- check -------------------------------------------------------------------------------------
# shellcheck disable=SC1091
if ! (set +u; source install/setup.bash && "$VENV/bin/python" -c \
    "import rclpy, torch, timm, smplx; from homae_ros.msg import HandObjectResult" \
    >"$LOG_DIR/check.log" 2>&1); then
  cat "$LOG_DIR/check.log" >&2
  die "the environment was built but does not import (see above)."
fi
say "ready: .venv (Python $PYVER) and install/ (source install/setup.bash to use ROS from a shell)"
