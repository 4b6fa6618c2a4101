#!/usr/bin/env bash
# Validates docker-compose.yml with a real Compose implementation's parser (docker-compose
# 1.29, from PyPI: it reads and checks the file against the Compose schema without a Docker
# engine), run by scripts/test.sh: with the secrets scripts/compose-secrets.sh writes it must
# be valid, every profile included; without them it must refuse, naming what is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/orderflow/compose-venv
COMPOSE="$VENV/bin/docker-compose"
if ! "$COMPOSE" version >/dev/null 2>&1; then
  echo "==> installing docker-compose 1.29.2 into $VENV (once)" >&2
  python3 -m venv "$VENV"
  # PyYAML 5.4 (which docker-compose 1.29 pins) builds only with Cython < 3.
  "$VENV/bin/pip" install -q "cython<3" wheel
  "$VENV/bin/pip" install -q --no-build-isolation "pyyaml==5.4.1"
  "$VENV/bin/pip" install -q "docker-compose==1.29.2"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$ROOT/docker-compose.yml" "$ROOT/deploy" "$ROOT/scripts" "$work/"
cd "$work"
if out=$("$COMPOSE" config -q 2>&1); then
  echo "compose: docker-compose.yml was accepted without any secret" >&2
  exit 1
fi
grep -q "set ORDERFLOW_" <<<"$out" || { echo "compose: refused, but without naming the setting: $out" >&2; exit 1; }
bash scripts/compose-secrets.sh >/dev/null
"$COMPOSE" --profile monitoring --profile tools config -q
services=$("$COMPOSE" --profile monitoring --profile tools config --services | sort | tr '\n' ' ')
echo "compose: valid with generated secrets ($services); refused without them"
