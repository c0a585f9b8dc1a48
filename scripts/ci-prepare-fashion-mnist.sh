#!/usr/bin/env bash
# Run by .ci/run before the tests: brings Fashion-MNIST (Debian's dataset-fashion-mnist, about
# 31 MB) into .tools/fashion-mnist so the real-data checks (FashionMnistTests, the pixel
# baseline on real images) run. If it fails, those tests report themselves skipped with the reason.
set -euo pipefail
exec bash "$(dirname "$0")/fetch-fashion-mnist.sh"
