#!/usr/bin/env bash
set -euo pipefail
python -m pip install torch==2.6.0 torchvision==0.21.0
python -m pip install "git+https://github.com/pytorch/ao.git"
conda install -y -c pytorch-nightly pytorch
