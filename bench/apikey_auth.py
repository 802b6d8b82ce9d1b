"""How long the API-key check adds to a request (median), against the configured database.

Measures, in one run: ``ApiKeyAuthentication.authenticate`` for a valid key (parse, lookup by
public id, SHA-256, constant-time compare; ``last_used_at`` is written at most once a minute so
the steady state is one SELECT of the key, its organisation and its creator's role), the same
from the per-process cache (``TRAINYARD_REQUEST_CACHE_SECONDS``, the web tier's default: the row
is read at most once a second), the same for an unknown key, and for contrast Django's default
password hasher (PBKDF2) checking one password — what a "slow hash" design would add.

Usage: ``python bench/apikey_auth.py [N]`` (uses ``DATABASE_URL``; migrates a throwaway schema
when on SQLite). Prints medians in milliseconds and the ratio.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.hashers import check_password, make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402

from saas.api.authentication import ApiKeyAuthentication  # noqa: E402
from saas.apikeys.services import api_key_create  # noqa: E402
from saas.common.actor import Actor  # noqa: E402
from saas.tenancy.services import organization_create  # noqa: E402


def median_ms(fn, n: int) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main(n: int = 2000) -> None:
    call_command("migrate", verbosity=0)
    slug = f"bench-{time.time_ns()}"
    org = organization_create(
        slug=slug, name="bench", owner_email=f"{slug}@bench.test", actor=Actor.system()
    )
    secret = api_key_create(organization=org, name="bench", actor=Actor.system()).secret
    auth = ApiKeyAuthentication()
    rf = RequestFactory()
    good = rf.get("/v1/datasets", HTTP_AUTHORIZATION=f"Bearer {secret}")
    bad = rf.get("/v1/datasets", HTTP_AUTHORIZATION=f"Bearer ty_live_{'x' * 12}_{'y' * 43}")

    def check_bad():
        try:
            auth.authenticate(bad)
        except Exception:
            pass

    auth.authenticate(good)  # warm the connection and last_used_at
    cached = median_ms(lambda: auth.authenticate(good), n)
    with override_settings(TRAINYARD_REQUEST_CACHE_SECONDS=0):  # every check reads the row
        valid = median_ms(lambda: auth.authenticate(good), n)
    unknown = median_ms(check_bad, n)
    hashed = make_password(secret)
    slow = median_ms(lambda: check_password(secret, hashed), 20)
    engine = django.conf.settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(
        f"API-key check, median of {n} ({engine}): valid key {valid:.3f} ms reading its row, "
        f"{cached:.3f} ms from the per-process cache (≤ 1 s old), unknown key {unknown:.3f} ms"
    )
    print(
        f"for contrast, PBKDF2 check of one password: {slow:.1f} ms ({slow / valid:.0f}x the SHA-256 design)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
