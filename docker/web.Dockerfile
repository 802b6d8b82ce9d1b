# The web tier (Django + DRF, gunicorn) and the one-off `migrate`: requirements/web.lock only,
# so no TensorFlow, no test tools. Build from the repository root:
#   docker build -f docker/web.Dockerfile -t trainyard-web .
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements/web.lock requirements/web.lock
RUN pip install --no-cache-dir -r requirements/web.lock
COPY . .
EXPOSE 8000
CMD ["gunicorn", "saas.wsgi", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "4", "--timeout", "120"]
