#!/usr/bin/env bash
# Run by .ci/run before the tests: brings NVRTC into .tools/nvrtc so NvrtcCompileTests compiles
# every kernel. If it fails, those tests report themselves skipped with the reason.
set -euo pipefail
exec bash "$(dirname "$0")/fetch-nvrtc.sh"
