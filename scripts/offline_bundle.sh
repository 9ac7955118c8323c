#!/usr/bin/env bash
# Fetch what a GPU machine without network access needs to run scripts/gpu_train_demo.sh,
# into .offline/ (git-ignored): the Python wheels its image may lack (CPython 3.12, x86-64)
# and the GL loader packages (Debian amd64) that moderngl's headless EGL context opens there.
# Run here, where PyPI and Debian are reachable; then carry .offline/ with the checkout.
#     bash scripts/offline_bundle.sh            # writes .offline/wheels and .offline/gl
#     PYVER=3.11 bash scripts/offline_bundle.sh # wheels for another Python
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[[ -x $PY ]] || PY=python3
PYVER=${PYVER:-3.12}
rm -rf .offline && mkdir -p .offline/wheels .offline/gl
# pure-Python or binary wheels of the target Python; antlr4 (omegaconf's parser) is an sdist,
# built here into a py3-none-any wheel
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_5_x86_64 \
    manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
    --implementation cp "${platforms[@]}" -d .offline/wheels \
    "$(grep -h '^smplx==' requirements/smplx.txt)" \
    "$(grep -h '^omegaconf==' requirements/core.txt)" \
    "$(grep -h '^moderngl==' requirements/core.txt)" glcontext==3.1.0
"$PY" -m pip wheel -q --no-deps -w .offline/wheels \
    "$(grep -ho '^antlr4-python3-runtime==[0-9.]*' requirements/core.txt)"
# the GL loaders (glvnd); the GPU driver's own EGL library is on the GPU machine already
lists=$(mktemp -d)
mkdir -p "$lists/partial"
apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
apt-get "${apt_opts[@]}" update -qq
(cd .offline/gl && apt-get "${apt_opts[@]}" download -q \
    libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2>/dev/null)
rm -rf "$lists"
ls -l .offline/wheels .offline/gl
du -sh .offline
