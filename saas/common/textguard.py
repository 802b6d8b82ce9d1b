"""Every string a model saves is checked before PostgreSQL sees it.

PostgreSQL refuses NUL in text and jsonb, psycopg cannot send a lone surrogate, and a varchar
refuses a longer value: each is a database error (a 500 for a request, a crashed task for a
worker) at whichever save met it first. :func:`check_strings` runs on ``pre_save`` for every
model of the project (connected in ``saas.api.apps``), so such a value is a
``ValidationFailed`` (400) naming the field instead, and nothing is written. Serializers and
forms check their own fields first; this is the floor under them (``QuerySet.update`` and
``bulk_create`` skip signals and are not covered).
"""

from __future__ import annotations

from typing import Any

from django.db import models

from saas.common.errors import ValidationFailed


def _why(value: str) -> str | None:
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not valid Unicode text)"
    return None


def _json_problem(value: Any) -> str | None:
    """The first reason a JSON value cannot be stored, looking at every key and string."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            why = _why(v)
            if why:
                return why
        elif isinstance(v, dict):
            for k, item in v.items():
                if isinstance(k, str) and (why := _why(k)):
                    return f"a key {why}"
                stack.append(item)
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return None


def problems(instance: models.Model) -> list[dict[str, str]]:
    """``[{"field", "message"}]`` for every text or JSON field of ``instance`` that the
    database would refuse: NUL, lone surrogates, longer than ``max_length``."""
    out = []
    for field in instance._meta.concrete_fields:
        value = getattr(instance, field.attname, None)
        if isinstance(field, models.JSONField):
            why = _json_problem(value)
        elif isinstance(value, str) and isinstance(field, models.CharField | models.TextField):
            why = _why(value)
            limit = getattr(field, "max_length", None)
            if why is None and isinstance(field, models.CharField) and limit is not None:
                if len(value) > limit:
                    why = f"is {len(value)} characters long; at most {limit} are allowed"
        else:
            continue
        if why:
            out.append({"field": field.name, "message": why})
    return out


def check_strings(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """``pre_save`` receiver: raise :class:`ValidationFailed` listing :func:`problems`."""
    found = problems(instance)
    if found:
        raise ValidationFailed(
            f"{sender.__name__}: " + "; ".join(f"{p['field']} {p['message']}" for p in found),
            errors=found,
        )
