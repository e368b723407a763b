#!/usr/bin/env bash
# The test command of the README (and of .ci/run): installs everything, starts a real Kafka broker, a real
# PostgreSQL server and a real Keycloak (scripts/realinfra.py, no Docker), runs lint, types and the whole test
# suite against them, and tears them down even when tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."

# Prometheus's promtool (tests/integration/test_monitoring.py): built from the Go module proxy once and cached
# (a few minutes the first time, mostly downloads), in the background while the rest installs.
./scripts/promtool.sh &
promtool_build=$!

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
# The official AsyncAPI parser (tests/unit/test_asyncapi.py), exactly as locked; no install scripts.
npm ci --prefix tools/asyncapi --no-audit --no-fund --ignore-scripts --no-update-notifier --loglevel=error >/dev/null

# The console's browser tests (tests/browser): Debian's Chromium (Playwright cannot download browsers here) and
# axe-core exactly as locked in tools/console-browser.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y --no-install-recommends chromium >/dev/null \
            || { apt-get update -qq && apt-get install -y --no-install-recommends chromium >/dev/null; }
    else
        sudo apt-get install -y --no-install-recommends chromium >/dev/null \
            || { sudo apt-get update -qq && sudo apt-get install -y --no-install-recommends chromium >/dev/null; }
    fi
fi
npm ci --prefix tools/console-browser --no-audit --no-fund --ignore-scripts --no-update-notifier --loglevel=error >/dev/null

# HAPI FHIR's official R4 validator (tests/hapi_validator.py): jars from Maven Central, built once, cached.
.venv/bin/python -m tests.hapi_validator build

# Keycloak, the OpenID Connect provider of the console's single sign-on tests: the keycloak-quarkus-dist zip from
# Maven Central, unpacked and built once per machine (cached under ~/.cache/quartieri-gateway/keycloak); it runs
# on Java 21+ (Temurin 25 under /usr/lib/jvm). realinfra.py starts it with the other services.
python3 scripts/realinfra_keycloak.py build
wait "$promtool_build"

echo "== lint, types and import layers"
.venv/bin/ruff check gateway adapters schemas tests bench scripts
.venv/bin/mypy
.venv/bin/lint-imports   # the layering contracts of pyproject.toml ([tool.importlinter])

echo "== tests (real Kafka, PostgreSQL and Keycloak)"
export CI="${CI:-true}"   # a test needing Kafka, PostgreSQL or Keycloak fails instead of skipping
python3 scripts/realinfra.py run -- .venv/bin/python -m pytest -p no:cacheprovider "$@"
