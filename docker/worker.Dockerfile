# The image for every process that holds TensorFlow: requirements/worker.lock, i.e. the web
# set plus TensorFlow (CPU) and the data plane's ASGI stack (Starlette, uvicorn with uvloop
# and httptools, orjson, prometheus-client). A GPU image installs `tensorflow[and-cuda]` at
# the same version on top. docker-compose.yml runs it as:
#   serve (the default CMD)  python -m serve --host 0.0.0.0 --port 8001   (data plane, EXPOSEd)
#   worker-training          celery -A workers.celery_app worker -Q training-cpu -c 1 --prefetch-multiplier 1
#   worker-maintenance       celery -A workers.celery_app worker -Q maintenance -c 2 --prefetch-multiplier 1
#   beat                     celery -A workers.celery_app beat --schedule /data/celerybeat-schedule
# serve's readiness is GET /v2/health/ready (the compose healthcheck), its metrics GET /metrics.
# TensorFlow is imported only when a model is first loaded or a task first runs, never at
# start-up. Build from the repository root:
#   docker build -f docker/worker.Dockerfile -t trainyard-worker .
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /app
COPY requirements/worker.lock requirements/worker.lock
RUN pip install --no-cache-dir -r requirements/worker.lock
COPY . .
EXPOSE 8001
CMD ["python", "-m", "serve", "--host", "0.0.0.0", "--port", "8001"]
