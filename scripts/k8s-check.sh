#!/usr/bin/env bash
# Validates the Kubernetes manifests (deploy/k8s/) against the Kubernetes schemas with
# kubernetes-validate from PyPI, strictly (unknown fields refused), run by scripts/test.sh. The
# ServiceMonitor is a Prometheus Operator resource whose schema kubernetes-validate does not
# carry: it is checked for its kind and fields here. A deliberately broken Deployment must fail,
# so a validator that passes everything is caught.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${XDG_CACHE_HOME:-$HOME/.cache}/orderflow/k8s-venv
VALIDATE="$VENV/bin/kubernetes-validate"
if ! "$VALIDATE" --version >/dev/null 2>&1; then
  echo "==> installing kubernetes-validate into $VENV (once)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "kubernetes-validate==1.37.0"
fi
cd "$ROOT/deploy/k8s"
"$VALIDATE" --strict --quiet --no-warn *.yaml
passed=$("$VALIDATE" --strict *.yaml 2>&1 | grep -c ' passed ')
"$VENV/bin/python" - <<'PY'
import yaml
doc = yaml.safe_load(open("monitoring.yaml"))
assert doc["kind"] == "ServiceMonitor" and doc["apiVersion"] == "monitoring.coreos.com/v1", doc
assert doc["spec"]["endpoints"][0]["port"] == "metrics", doc
PY
broken=$(mktemp --suffix .yaml)
trap 'rm -f "$broken"' EXIT
sed 's/replicas: 2/replicas: two/' order-service.yaml >"$broken"
if "$VALIDATE" --strict --quiet "$broken" >/dev/null 2>&1; then
  echo "k8s: a Deployment with replicas: two passed: the validator checks nothing" >&2
  exit 1
fi
echo "k8s: $passed resources valid against the Kubernetes $("$VALIDATE" --version | tr -d '\n') schemas (strict); a broken one refused"
