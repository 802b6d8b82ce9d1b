FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 TF_USE_LEGACY_KERAS=1
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
