"""Presentation shared by every page: a domain error's problems, a form's errors, counts.

Pure: nothing here queries the database, reads a request or renders HTML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def problem_list(errors: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The entries of a domain error's ``errors`` that have a message, as dicts.

    Args:
        errors: ``[{"field": str | None, "message": str, "line"?: int, ...}]`` or ``None``.

    Returns:
        The same entries, in order, without those whose ``message`` is empty or missing.
    """
    return [dict(e) for e in (errors or []) if e.get("message")]


def form_problems(errors: Mapping[str, Iterable[object]]) -> list[dict[str, Any]]:
    """A Django form's ``errors`` (``{field: [message, ...]}``) as ``[{"field", "message"}]``,
    the messages of one field joined by a space."""
    # Iterating Django's ErrorList yields message strings (typed as ValidationError | str).
    return [
        {"field": field, "message": " ".join(str(m) for m in msgs)}
        for field, msgs in errors.items()
    ]


def split_field_problems(
    problems: Iterable[Mapping[str, Any]], *, fields: Iterable[str], fallback: str
) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Sort a service's problems into those a form field can show and the rest.

    ``hyperparameters.epochs`` belongs to the field ``epochs``: the API names hyperparameters
    by their path in the JSON body, the training form flattens them.

    Args:
        problems: ``[{"field": str | None, "message": str}]``.
        fields: the form's field names.
        fallback: the error's summary, shown alone when no problem is left for the page.

    Returns:
        ``([(field, message)], page_problems)``; ``page_problems`` is never empty.
    """
    names = set(fields)
    on_fields: list[tuple[str, str]] = []
    rest: list[dict[str, Any]] = []
    for p in problems:
        name = (p.get("field") or "").removeprefix("hyperparameters.")
        if name in names:
            on_fields.append((name, p["message"]))
        else:
            rest.append(dict(p))
    return on_fields, rest or [{"field": None, "message": fallback}]


def count(n: int) -> str:
    """An integer with thousands separators: ``3000`` → ``"3,000"``."""
    return f"{n:,}"
