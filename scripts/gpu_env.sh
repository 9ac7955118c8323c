# Sourced by the GPU scripts (benchmarks/gpu_check.sh, scripts/gpu_train_demo.sh) from the
# repository root: sets PY, the Python to run, and its environment.
# - After `make setup` (.venv and the colcon install/): the venv, with ROS 2 sourced.
# - Else (a GPU machine whose image has PyTorch but no network, nothing of `make setup`): the
#   machine's python3 (or $PYTHON), plus what scripts/offline_bundle.sh put in .offline/: the
#   wheels its image may lack, unpacked onto PYTHONPATH only when an import fails, and the GL
#   loader packages (as root, when no libEGL is installed) for headless rendering.
# Needs WORK (a scratch folder) and a `stamp` function (a log line) from the caller.
gpu_env_root=$PWD
PY=${PYTHON:-}
if [[ -z $PY && -x .venv/bin/python && -f install/setup.bash ]]; then
    set +u
    export VIRTUAL_ENV=$gpu_env_root/.venv PATH=$gpu_env_root/.venv/bin:$PATH
    export AMENT_PREFIX_PATH=$gpu_env_root/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}
    # shellcheck disable=SC1091
    source install/setup.bash
    set -u
    PY=$gpu_env_root/.venv/bin/python
fi
PY=${PY:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "$0: $PY has no PyTorch: run 'make setup' first, or set PYTHON to a Python with it" >&2
    exit 2
fi
export PYTHONPATH=$gpu_env_root${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if ! "$PY" -c "import smplx, omegaconf, moderngl, timm, safetensors" 2>/dev/null \
    && compgen -G ".offline/wheels/*.whl" >/dev/null; then
    # a wheel is a zip of the package's files: unpacked onto the path, no pip needed
    "$PY" -c 'import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]' \
        "$WORK/site" .offline/wheels/*.whl
    export PYTHONPATH=$PYTHONPATH:$WORK/site
    stamp "unpacked $(find .offline/wheels -name '*.whl' | wc -l) wheels from .offline/wheels"
fi
if compgen -G ".offline/gl/*.deb" >/dev/null && [[ $(id -u) == 0 ]] \
    && ! ldconfig -p | grep -q 'libEGL.so.1 '; then
    for f in .offline/gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    stamp "unpacked the GL loaders from .offline/gl"
fi
gpu_env_egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [[ -f $gpu_env_egl && -z ${__EGL_VENDOR_LIBRARY_FILENAMES:-} ]]; then
    export __EGL_VENDOR_LIBRARY_FILENAMES=$gpu_env_egl
fi
unset gpu_env_root gpu_env_egl
