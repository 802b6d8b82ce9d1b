"""The HTTP half of idempotency: a request's fingerprint (``saas.limits.idempotency`` stores it).

The fingerprint is the SHA-256 of the parsed request: JSON canonicalised (sorted keys),
multipart form fields plus each file's SHA-256, so a client's random multipart boundary does
not change it.
"""

from __future__ import annotations

import hashlib
import json


def request_fingerprint(request) -> str:
    """SHA-256 (64 hex characters) of the method, path and parsed body of a DRF request."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    data = request.data
    if hasattr(data, "lists"):  # QueryDict (multipart / form)
        fields = {k: v for k, v in data.lists() if k not in request.FILES}
        digest.update(json.dumps(fields, sort_keys=True, default=str).encode())
        for name in sorted(request.FILES):
            for f in request.FILES.getlist(name):
                h = hashlib.sha256()
                for chunk in f.chunks():
                    h.update(chunk)
                f.seek(0)
                digest.update(f"{name}:{f.name}:{h.hexdigest()}\n".encode())
    else:
        digest.update(json.dumps(data, sort_keys=True, default=str).encode())
    return digest.hexdigest()
