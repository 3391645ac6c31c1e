# binprice ingest as a container: the wheel is built in one stage and installed into a slim
# Python 3.11 runtime that runs as an unprivileged user.
#
#   docker build -t binprice .
#   docker run --env-file .env -e BINPRICE_DATABASE_URL=postgresql://... binprice
#
# It expects an external PostgreSQL (BINPRICE_DATABASE_URL); `docker compose up -d` starts one
# beside it (see docker-compose.yml). The spool lives in /var/lib/binprice: mount a volume there.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# Only what the wheel is built from (hatchling needs the readme and the migrations too).
COPY pyproject.toml README.md ./
COPY src ./src
COPY alembic ./alembic
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BINPRICE_DATA_DIR=/var/lib/binprice \
    BINPRICE_METRICS_PORT=9108
RUN groupadd --system --gid 10001 binprice \
    && useradd --system --uid 10001 --gid binprice --home-dir /var/lib/binprice \
        --create-home --shell /usr/sbin/nologin binprice
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
USER 10001:10001
WORKDIR /var/lib/binprice
VOLUME ["/var/lib/binprice"]
EXPOSE 9108
# `docker stop` sends this to binprice itself (exec form below: no shell in between), which
# stops reading, commits what it received and exits 0 within 5 s.
STOPSIGNAL SIGTERM
# 200 while connected and committing, 503 (or no answer) otherwise; urllib, as the slim image
# has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['BINPRICE_METRICS_PORT'] + '/healthz', timeout=4)"]
ENTRYPOINT ["binprice"]
CMD ["ingest"]
