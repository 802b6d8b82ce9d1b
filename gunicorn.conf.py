# Read by gunicorn from its working directory (the repository in `make run` and the e2e stack,
# /app in docker/web.Dockerfile), whatever its command line says: errors gunicorn answers
# itself (unparseable requests, worker timeouts) are problem+json, not HTML
# (saas/gunicorn_worker.py).
worker_class = "saas.gunicorn_worker.ProblemSyncWorker"
