# imovsp HTTP API. Build: docker build -t imovsp .   Run: docker compose up (see compose.yaml).
# The model is not baked in: mount a models directory at /app/models, or mount the listings
# file at /data and the server trains a model on first start (`imovsp serve` does that).

FROM python:3.11-slim AS build
RUN pip install --no-cache-dir "uv==0.13.*"
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY src ./src
RUN uv sync --locked --no-dev --no-editable

FROM python:3.11-slim AS runtime
# LightGBM needs the OpenMP runtime; the compiled trees need a linker (binutils' ld).
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 binutils \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 imovsp \
    && mkdir -p /app/models /app/log /app/trees && chown imovsp /app/models /app/log /app/trees
COPY --from=build /app/.venv /app/.venv
WORKDIR /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    IMOVSP_MODELS_DIR=/app/models \
    IMOVSP_DATA=/data/sp-apartments-2019-dev.csv \
    IMOVSP_DATABASE_URL=sqlite:////app/log/imovsp.db \
    IMOVSP_TREES_CACHE=/app/trees
USER imovsp
EXPOSE 8000
# Training on first start takes minutes: the health check waits for it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=4)"
# The Procfile's command, run by a shell so that $PORT is expanded, as a PaaS does.
CMD ["sh", "-c", "exec imovsp serve --host 0.0.0.0 --port $PORT"]
