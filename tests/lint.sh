#!/usr/bin/env bash
# Static checks: ruff (lint + format), the layer contract (lint-imports) and mypy.
# lint-imports and mypy read a built copy of the package (pip install --target): the package is
# mapped from agent/, tools/, evals/, prompts/ (pyproject package-dir), which neither tool can follow
# through an editable install. Run after `bash tests/run.sh` has made .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pip install -q --no-deps --no-build-isolation --target "$site" . >/dev/null
rm -rf build ./*.egg-info
(cd "$site" && PYTHONPATH="$site" "$OLDPWD/.venv/bin/lint-imports" "$OLDPWD/pyproject.toml")
(cd "$site" && "$OLDPWD/.venv/bin/mypy" --config-file "$OLDPWD/pyproject.toml" -p vidagent)
