"""Prefixed public ids (``ds_…``, ``tj_…``) in the style of Stripe's object ids."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 20) -> str:
    """Return ``f"{prefix}_{random}"``; ``length`` base62 characters (~119 bits for 20)."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class IdFactory:
    """A picklable default for a model's ``id`` field (Django migrations need a named callable)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def deconstruct(self):
        return ("saas.common.ids.IdFactory", (self.prefix,), {})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdFactory) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)
