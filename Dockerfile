# observe server image: `docker compose up` runs it next to Postgres (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    OBSERVE_DATA_DIR=/var/lib/observe \
    OBSERVE_HOST=0.0.0.0 \
    OBSERVE_PORT=8080

WORKDIR /opt/observe
COPY pyproject.toml README.md alembic.ini ./
COPY observe ./observe
COPY collectors ./collectors
COPY analyzers ./analyzers
COPY dashboards ./dashboards
COPY migrations ./migrations
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/observe --create-home observe

USER observe
VOLUME ["/var/lib/observe"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"
CMD ["observe", "serve"]
