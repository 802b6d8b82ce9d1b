"""Who may do what: one table, used by the API, the dashboard and the tests alike.

A request acts with the permissions of its principal:

- a signed-in user: the actions of their role in the current organisation (``ROLE_ACTIONS``);
- an API key: the actions its scopes grant (``SCOPE_ACTIONS``), intersected with the current
  role of the user who created it (a key cannot outlive its creator's rights: demote the user
  and their keys lose write access; remove them and their keys stop working). Keys created by
  an operator from the command line have no creator and are bound by their scopes only.

Actions with no scope (managing keys, members, invitations, reading the audit log) are for
signed-in users only, so a leaked key can never mint keys or invite people.
"""

from __future__ import annotations

import enum


class Action(enum.StrEnum):
    DATASETS_READ = "datasets.read"
    DATASETS_WRITE = "datasets.write"
    TRAINING_READ = "training.read"
    TRAINING_WRITE = "training.write"
    MODELS_PREDICT = "models.predict"
    USAGE_READ = "usage.read"
    INVOICES_READ = "invoices.read"
    BILLING_MANAGE = "billing.manage"
    KEYS_READ = "keys.read"
    KEYS_MANAGE_OWN = "keys.manage_own"
    KEYS_MANAGE_ALL = "keys.manage_all"
    MEMBERS_READ = "members.read"
    MEMBERS_MANAGE = "members.manage"
    AUDIT_READ = "audit.read"


A = Action
_READ = {A.DATASETS_READ, A.TRAINING_READ, A.MEMBERS_READ}
_DEVELOP = _READ | {
    A.DATASETS_WRITE,
    A.TRAINING_WRITE,
    A.MODELS_PREDICT,
    A.KEYS_READ,
    A.KEYS_MANAGE_OWN,
}

ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "viewer": frozenset(_READ),
    "developer": frozenset(_DEVELOP),
    "billing": frozenset({A.MEMBERS_READ, A.USAGE_READ, A.INVOICES_READ, A.BILLING_MANAGE}),
    "admin": frozenset(
        _DEVELOP
        | {
            A.USAGE_READ,
            A.INVOICES_READ,
            A.BILLING_MANAGE,
            A.KEYS_MANAGE_ALL,
            A.MEMBERS_MANAGE,
            A.AUDIT_READ,
        }
    ),
    "owner": frozenset(Action),
}

SCOPE_ACTIONS: dict[str, Action] = {
    "datasets:read": A.DATASETS_READ,
    "datasets:write": A.DATASETS_WRITE,
    "training:read": A.TRAINING_READ,
    "training:write": A.TRAINING_WRITE,
    "models:predict": A.MODELS_PREDICT,
    "usage:read": A.USAGE_READ,
}
ACTION_SCOPE: dict[Action, str] = {action: scope for scope, action in SCOPE_ACTIONS.items()}

# Actions a suspended organisation may no longer take (it can still sign in and read).
BLOCKED_WHEN_SUSPENDED = frozenset({A.TRAINING_WRITE, A.MODELS_PREDICT, A.DATASETS_WRITE})


def role_allows(role: str | None, action: Action) -> bool:
    """True if ``role`` (``owner``, ``admin``, ``developer``, ``viewer``, ``billing``) may ``action``."""
    return role is not None and action in ROLE_ACTIONS.get(role, frozenset())


def key_allows(
    scopes: list[str], creator_role: str | None, has_creator: bool, action: Action
) -> str | None:
    """Why an API key may not take ``action``, or None if it may.

    Args:
        scopes: the key's scopes.
        creator_role: the creating user's current role in the key's organisation (None if
            they are no longer a member).
        has_creator: False for operator keys made on the command line.
    """
    scope = ACTION_SCOPE.get(action)
    if scope is None:
        return "API keys cannot do this; sign in to the dashboard"
    if scope not in scopes:
        return f"This API key lacks the '{scope}' scope."
    if has_creator and not role_allows(creator_role, action):
        return f"The user who created this API key (role: {creator_role or 'no longer a member'}) may not do this."
    return None
