# The Celery workers (training, maintenance, inference) and beat: requirements/worker.lock,
# i.e. the web set plus TensorFlow (CPU). A GPU image installs `tensorflow[and-cuda]` on top.
# Build from the repository root:
#   docker build -f docker/worker.Dockerfile -t trainyard-worker .
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2
WORKDIR /app
COPY requirements/worker.lock requirements/worker.lock
RUN pip install --no-cache-dir -r requirements/worker.lock
COPY . .
CMD ["celery", "-A", "workers.celery_app", "worker", "-Q", "training-cpu", "-c", "1", \
     "--prefetch-multiplier", "1"]
