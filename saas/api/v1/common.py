"""What the /v1 resource modules share: input validation that refuses unknown fields."""

from __future__ import annotations

from saas.common.errors import ValidationFailed


def validated(serializer_class, data, **kwargs):
    """Validate ``data`` (the request's parsed body) with ``serializer_class`` and return its
    ``validated_data``; ``kwargs`` go to the serializer.

    Unknown top-level fields are a 400 too (a typo such as ``hyperparameter`` must not be
    silently ignored): :class:`~saas.common.errors.ValidationFailed` lists each of them. A
    field that fails its own check raises DRF's ``ValidationError`` (also a 400).
    """
    if hasattr(data, "keys"):
        known = set(serializer_class().fields)
        unknown = sorted(k for k in data.keys() if k not in known)
        if unknown:
            raise ValidationFailed(
                f"Unknown field(s): {', '.join(unknown)}.",
                errors=[
                    {"field": k, "message": f"unknown; known fields: {', '.join(sorted(known))}"}
                    for k in unknown
                ],
            )
    ser = serializer_class(data=data, **kwargs)
    ser.is_valid(raise_exception=True)
    return ser.validated_data
