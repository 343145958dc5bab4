# Monitoring Hub: `mhub serve` as a non-root user, installed exactly as uv.lock pins it.
#   docker build -t monitoring-hub .                              the hub
#   docker build --build-arg EXTRAS=demo -t monitoring-hub:demo .  also `mhub demo` and
#                                                                  `mhub sandbox` (moto)
# Run it with your configs mounted and a volume for its state: docs/operations.md ("Docker").
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
ARG EXTRAS=""
WORKDIR /src
# The locked dependencies first (a layer that outlives code changes), then the project itself,
# installed as a wheel would be (--no-editable), never re-resolved (--locked).
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project --no-cache ${EXTRAS:+--extra "$EXTRAS"}
COPY app ./app
COPY handlers ./handlers
COPY blocks ./blocks
COPY checks ./checks
COPY configs/demo ./configs/demo
RUN uv sync --locked --no-dev --no-editable --no-cache ${EXTRAS:+--extra "$EXTRAS"}

FROM python:3.11-slim
RUN useradd --system --create-home --home-dir /var/lib/monitoring-hub mhub \
    && mkdir -p /etc/monitoring-hub/configs
COPY --from=build /opt/venv /opt/venv
# No customer config is baked in: mount yours (a folder holding customers/*.yaml) read-only at
# /etc/monitoring-hub/configs. The SQLite file (when DATABASE_URL is not PostgreSQL) lives in
# the volume /var/lib/monitoring-hub.
ENV PATH=/opt/venv/bin:$PATH \
    HUB_CONFIG_DIR=/etc/monitoring-hub/configs \
    DATABASE_URL=sqlite+aiosqlite:////var/lib/monitoring-hub/hub.db \
    HUB_WEB_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
VOLUME /var/lib/monitoring-hub
USER mhub
WORKDIR /var/lib/monitoring-hub
EXPOSE 8080
# HUB_WEB_HOST=0.0.0.0 needs HUB_WEB_AUTH=user:password, or the hub refuses to start.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
STOPSIGNAL SIGTERM
ENTRYPOINT ["mhub"]
CMD ["serve"]
