# The wiro-relay image: the locked runtime dependencies and the package in a virtual environment,
# run as an unprivileged user. Build: docker build -t wiro-relay:0.1.0 .   (see docs/deployment.md)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: resolve nothing, install exactly what uv.lock says ------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9
# Compile bytecode at build time: the runtime filesystem is read-only, so it could not be written later.
# Copy instead of hard-linking from uv's cache, which stays behind in this stage.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /src

# Dependencies first, on their own layer: it is rebuilt only when the lock file changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-editable --no-install-project --python /usr/local/bin/python3.11

# Then the project itself, installed as a wheel (not editable) so the runtime needs no source tree.
COPY README.md ./
COPY service/ service/
COPY migrations/ migrations/
RUN uv sync --locked --no-dev --no-editable --python /usr/local/bin/python3.11

# ---- runtime: the same Python, the virtual environment, nothing else --------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="wiro-relay" \
      org.opencontainers.image.description="Relays image-to-video jobs to Wiro: exactly-once submission, confirmed callbacks, polling fallback, signed webhooks and job history." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it and volume ownership is predictable.
RUN groupadd --system --gid 10001 relay \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin relay \
    && mkdir -p /data \
    && chown 10001:10001 /data

COPY --from=builder /app/.venv /app/.venv

# The service listens on all interfaces in a container: the port is only reachable through what the
# orchestrator publishes, and it refuses to start there without RELAY_API_TOKENS unless
# RELAY_ALLOW_UNAUTHENTICATED=true. Secrets are never baked in: pass them at run time, preferably
# as files through the *_FILE variables.
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RELAY_HOST=0.0.0.0 \
    RELAY_PORT=8787 \
    RELAY_DATABASE_URL=sqlite:////data/relay.db

WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8787

# No curl in a slim image; the interpreter that is already there does the check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RELAY_PORT', '8787') + '/healthz', timeout=4)"]

# Exec form: the service is PID 1 and receives SIGTERM itself, for its graceful shutdown.
ENTRYPOINT ["wiro-relay"]
CMD ["serve"]
