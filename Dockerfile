# syntax=docker/dockerfile:1
# The gateway image: one image for every role, chosen by the command (see docker-compose.yml):
#   gateway migrate | gateway serve [--no-workers] | gateway worker
# All settings come from GATEWAY_* environment variables (gateway/settings.py); secrets are mounted files.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what the package build needs (pyproject.toml names README.md as the long description).
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
COPY schemas ./schemas
RUN pip install .


FROM python:3.11-slim

LABEL org.opencontainers.image.title="quartieri-gateway" \
      org.opencontainers.image.description="Consent-aware interoperability gateway for Milan's public-housing partners" \
      org.opencontainers.image.licenses="EUPL-1.2"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_DATA_DIR=/var/lib/gateway \
    GATEWAY_HTTP_HOST=0.0.0.0 \
    GATEWAY_HTTP_PORT=8080

# A fixed, unprivileged uid/gid: secret files mounted from the host must be readable by it (deploy/README.md).
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --home-dir /var/lib/gateway --no-create-home \
        --shell /usr/sbin/nologin gateway \
 && install -d -o gateway -g gateway -m 0750 /var/lib/gateway

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /var/lib/gateway
EXPOSE 8080

# No HEALTHCHECK here: the worker and migrate roles serve no HTTP. The API role answers GET /health (process up)
# and GET /health/ready (store reachable); the image has Python, so a check needs no curl:
#   python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health/ready', timeout=4)"
ENTRYPOINT ["gateway"]
CMD ["serve"]
