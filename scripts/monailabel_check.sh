#!/usr/bin/env bash
# Build a separate environment with MONAI Label, install this project into it, and run MONAI Label's
# BundleTrainTask and BundleInferTask on a GenSeg bundle (scripts/monailabel_check.py).
# MONAI Label stays out of the project's dependencies and default CI: it pins numpy < 2 and needs
# torchvision. Usage: bash scripts/monailabel_check.sh --bundle skin_lesion2d [--work NEW_DIR]
# (VENV=... to choose the environment; TORCH_INDEX=https://download.pytorch.org/whl/cpu for the CPU build
# of torch where pip would otherwise fetch the multi-GB CUDA one)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-$(mktemp -d)/monailabel-venv}"
python3 -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
# torch and torchvision pinned as a pair: an unpinned torchvision pulls whatever torch it was built for
python -m pip install --quiet torch==2.13.0 torchvision==0.28.0 ${TORCH_INDEX:+--index-url "$TORCH_INDEX"}
# MONAI 1.6's Spacingd updates every "image_*" key of the data as a meta dict, and MONAI Label 0.8.5
# adds the string key "image_path": inference fails in Spacingd. MONAI 1.5 has no such loop.
# The server's DICOM stack (pydicom-seg) needs pydicom 2, hence the older pynetdicom and dicomweb-client.
python -m pip install --quiet "monailabel==0.8.5" "monai==1.5.1" "pydicom<3" "pynetdicom<3" "dicomweb-client<0.60"
python -m pip install --quiet -e .
python -m pip list --format=freeze | grep -iE '^(monailabel|monai|torch|torchvision|numpy|pydicom)==' || true
python scripts/monailabel_check.py "$@"
