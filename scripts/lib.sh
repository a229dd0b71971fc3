# Shared by scripts/demo, scripts/test and .ci/run: a Python virtualenv with
# the pinned moto, and a moto server on a free loopback port for as long as
# the calling script runs.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
# moto 5.2.5 is the version whose gaps DESIGN.md and the tests account for.
MOTO_REQUIREMENT='moto[server]==5.2.5'

ensure_venv() {
  if [ ! -x "$VENV/bin/moto_server" ]; then
    echo "==> installing $MOTO_REQUIREMENT into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$MOTO_REQUIREMENT"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts moto in the background, waits until it answers and exports
# MOTO_ENDPOINT; the server is stopped when the calling shell exits.
start_moto() {
  ensure_venv
  local port log
  port=$(free_port)
  log="${TMPDIR:-/tmp}/cdn-log-delivery-moto-$port.log"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  MOTO_PID=$!
  trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
  export MOTO_ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if curl -sf "$MOTO_ENDPOINT/moto-api/" >/dev/null 2>&1; then
      echo "==> moto listening on $MOTO_ENDPOINT (log: $log)" >&2
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto failed to start; its log:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "moto did not answer within 20 s" >&2
  return 1
}

# Environment for the worker and the SDK when talking to moto.
use_moto_credentials() {
  export AWS_ENDPOINT_URL="$MOTO_ENDPOINT"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
  unset AWS_PROFILE AWS_SESSION_TOKEN
}
