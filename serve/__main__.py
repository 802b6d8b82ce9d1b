"""``python -m serve``: run the data plane on uvicorn.

One uvicorn worker per process by default (scale out with more ``serve`` processes or
replicas behind the proxy; each holds its own model cache and Prometheus registry). With
``--workers N`` uvicorn spawns N fresh interpreters: models are loaded inside each, never
before the fork. Its logs are the web tier's JSON lines (``serve.logctx``).
"""

from __future__ import annotations

import argparse
import os

import uvicorn


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m serve", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("TRAINYARD_SERVE_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("TRAINYARD_SERVE_PORT", "8001"))
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--upstream",
        default=None,
        help="forward every other path to this control-plane URL (make run's single port)",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args()
    if args.upstream:
        os.environ["TRAINYARD_SERVE_UPSTREAM"] = args.upstream
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")
    from django.conf import settings

    uvicorn.run(
        "serve.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_level=args.log_level,
        # Django's LOGGING (JSON lines, saas.common.logs) from the start, the supervisor's
        # lines included, instead of uvicorn's plain-text set-up; django.setup() in each
        # worker applies the same again.
        log_config=settings.LOGGING,
        access_log=False,
        timeout_keep_alive=30,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )


if __name__ == "__main__":
    main()
