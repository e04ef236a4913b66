# Sourced by scripts/run and scripts/test: create or reuse the virtual environment and install Ember.
# Idempotent: the install step is skipped while pyproject.toml is unchanged since the last install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${EMBER_VENV:-.venv}"
EXTRAS="${1:-}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
stamp="$VENV/.ember-installed${EXTRAS:+-$EXTRAS}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check torch==2.13.0
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".${EXTRAS:+[$EXTRAS]}"
  echo "$want" > "$stamp"
fi
export PATH="$PWD/$VENV/bin:$PATH"
# Build Ember's CPU decode kernels now rather than at the first model load (cached after the first
# build; nothing to do where the CPU lacks AVX512-VNNI).
python -c "
import logging
logging.basicConfig(level=logging.INFO, format='%(message)s')
from ember.llm.kernels import cpu_kernels_available
cpu_kernels_available()
"
