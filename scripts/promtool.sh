#!/usr/bin/env bash
# Builds Prometheus's promtool (checks and unit-tests deploy/prometheus/alerts.yml) from the Go module proxy,
# once: the binary lands in infra/promtool/bin with a stamp of its version, and a second run with the same
# version does nothing. The module version is Prometheus's Go module numbering (v0.316.0 is Prometheus 3.x).
# Built without Prometheus's cloud service-discovery plugins (AWS, Azure, Kubernetes...: most of the download
# and of the compile time), keeping DNS discovery, which deploy/prometheus/prometheus.yml uses.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="${PROMTOOL_MODULE_VERSION:-v0.316.0}"
BIN="$PWD/infra/promtool/bin"
TAGS="remove_all_sd,enable_dns_sd"
STAMP="$BIN/.module-version"
if [[ -x "$BIN/promtool" && "$(cat "$STAMP" 2>/dev/null)" == "$VERSION $TAGS" ]]; then
    exit 0
fi
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
mkdir -p "$BIN"
started=$(date +%s)
GOBIN="$BIN" GOFLAGS=-mod=mod go install -tags "$TAGS" "github.com/prometheus/prometheus/cmd/promtool@$VERSION"
echo "$VERSION $TAGS" >"$STAMP"
echo "promtool $VERSION built in $(($(date +%s) - started)) s"
