# Monitoring Hub: `mhub serve` as a non-root user. See docs/operations.md.
FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY app ./app
COPY handlers ./handlers
COPY blocks ./blocks
COPY checks ./checks
RUN uv venv /opt/venv && VIRTUAL_ENV=/opt/venv uv pip install --no-cache .

FROM python:3.11-slim
RUN useradd --system --create-home --home-dir /var/lib/monitoring-hub mhub
COPY --from=build /opt/venv /opt/venv
COPY configs /etc/monitoring-hub/configs
ENV PATH=/opt/venv/bin:$PATH \
    HUB_CONFIG_DIR=/etc/monitoring-hub/configs \
    DATABASE_URL=sqlite+aiosqlite:////var/lib/monitoring-hub/hub.db \
    HUB_WEB_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER mhub
WORKDIR /var/lib/monitoring-hub
EXPOSE 8080
# HUB_WEB_HOST=0.0.0.0 needs HUB_WEB_AUTH=user:password, or the hub refuses to start.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
STOPSIGNAL SIGTERM
ENTRYPOINT ["mhub"]
CMD ["serve"]
