"""One access rule: a principal (a signed-in user or an API key) in one organisation.

An :class:`Access` is built once per request (``Access.for_api_key`` or ``Access.for_session``)
and answers every question a guard asks: may this principal take an action (the role table and
key scopes of :mod:`saas.tenancy.permissions`), is the action blocked while the organisation is
suspended, which keys may it see ("my keys only"), and how to name it for rate limits and
idempotency. The API base view, the dashboard and (later) the data plane and the console use it;
none of them re-implements a rule.

No HTTP here: refusals are domain errors (:class:`AccessDenied`, :class:`OrganizationSuspended`,
:class:`NotAMember`), which the API maps to problem details and the dashboard to error pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import EllipsisType
from typing import Protocol

from saas.common.actor import Actor
from saas.common.errors import DomainError

from .models import Membership, Organization
from .permissions import BLOCKED_WHEN_SUSPENDED, Action, key_allows, role_allows
from .selectors import current_membership, membership_role


class AccessDenied(DomainError):
    """The principal may not take the action; ``detail`` names what is missing."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotAMember(AccessDenied):
    """A signed-in user who belongs to no organisation."""


class OrganizationSuspended(DomainError):
    """The organisation is suspended and the action costs money (upload, train, predict)."""

    status = 403
    code = "organization-suspended"
    title = "The organisation is suspended"


SUSPENDED_DETAIL = (
    "This organisation is suspended: you can sign in and read, but not upload, train or predict. "
    "Contact your account owner or support."
)


class KeyPrincipal(Protocol):
    """What Access needs of an API key (``saas.apikeys.models.ApiKey``; tenancy sits below
    apikeys, so it names the shape instead of importing the model)."""

    pk: str
    organization: Organization
    organization_id: str
    created_by_id: int | None
    scopes: list[str]


@dataclass(frozen=True)
class Access:
    """A principal in an organisation.

    Attributes:
        organization: the tenant every read and write of the request is scoped to.
        role: the session user's role, or for a key its creator's current role (None when the
            creator is no longer a member, or the key was made on the command line).
        user_id: the signed-in user, or the key's creator (None for operator keys).
        api_key_id: the key's id for key principals, else None.
        scopes: the key's scopes (None for sessions: a session is bound by its role only).
        memberships: a session user's memberships, for the organisation switcher (empty for keys).
    """

    organization: Organization
    role: str | None
    user_id: int | None
    api_key_id: str | None = None
    scopes: frozenset[str] | None = None
    memberships: tuple[Membership, ...] = field(default=(), repr=False)

    @classmethod
    def for_api_key(
        cls, key: KeyPrincipal, *, creator_role: str | None | EllipsisType = ...
    ) -> Access:
        """The access of an authenticated API key: its scopes, bounded by its creator's current
        role in the key's organisation. ``creator_role`` is that role when the caller already
        read it with the key (``saas.apikeys.services.api_key_resolve``; None: not a member);
        left out, it is read here (one query; none for operator keys)."""
        role: str | None = None
        if isinstance(creator_role, str):
            role = creator_role
        elif creator_role is ... and key.created_by_id is not None:
            role = membership_role(organization_id=key.organization_id, user_id=key.created_by_id)
        return cls(
            organization=key.organization,
            role=role,
            user_id=key.created_by_id,
            api_key_id=key.pk,
            scopes=frozenset(key.scopes),
        )

    @classmethod
    def for_session(cls, user, wanted_organization_id: str | None) -> Access:
        """The access of signed-in ``user`` in their current organisation: the one chosen with
        the switcher (``wanted_organization_id``) if still a member, else the first.

        Raises :class:`NotAMember` if the user belongs to no organisation.
        """
        chosen, memberships = current_membership(
            user=user, wanted_organization_id=wanted_organization_id
        )
        if chosen is None:
            raise NotAMember("You are not a member of any organisation.")
        return cls(
            organization=chosen.organization,
            role=chosen.role,
            user_id=user.pk,
            memberships=tuple(memberships),
        )

    @property
    def is_api_key(self) -> bool:
        return self.api_key_id is not None

    @property
    def principal(self) -> str:
        """The rate-limit and idempotency principal: the key's id, or ``user:<id>``."""
        return self.api_key_id if self.api_key_id is not None else f"user:{self.user_id}"

    def actor(self, *, ip: str | None = None) -> Actor:
        """The actor to record for writes made with this access, from client address ``ip``."""
        return Actor(user_id=self.user_id, api_key_id=self.api_key_id, ip=ip)

    def denial(self, action: Action) -> str | None:
        """Why this principal may not take ``action`` (a sentence for the caller), or None."""
        if self.scopes is not None:
            return key_allows(sorted(self.scopes), self.role, self.user_id is not None, action)
        if not role_allows(self.role, action):
            return f"Your role ({self.role}) does not allow '{action}'."
        return None

    def allows(self, action: Action) -> bool:
        """True if the principal may take ``action`` (ignoring suspension)."""
        return self.denial(action) is None

    def blocked_when_suspended(self, action: Action) -> bool:
        """True if ``action`` costs money and the organisation is suspended."""
        return (
            action in BLOCKED_WHEN_SUSPENDED
            and self.organization.status == Organization.Status.SUSPENDED
        )

    def require(self, action: Action) -> None:
        """Raise :class:`AccessDenied` (role or scope) or :class:`OrganizationSuspended` unless
        the principal may take ``action`` now."""
        reason = self.denial(action)
        if reason:
            raise AccessDenied(reason)
        if self.blocked_when_suspended(action):
            raise OrganizationSuspended(SUSPENDED_DETAIL)

    @property
    def manages_owners(self) -> bool:
        """The owner rule: only an owner may grant, change or remove the owner role (invite an
        owner, promote someone to owner, demote or remove an owner). Keys never manage members."""
        return self.scopes is None and self.role == Membership.Role.OWNER

    def grantable_roles(self) -> list[str]:
        """The roles this principal may give someone (every role for an owner, all but owner
        otherwise), in the role table's order."""
        return [
            r for r in Membership.Role.values if self.manages_owners or r != Membership.Role.OWNER
        ]

    @property
    def keys_created_by(self) -> int | None:
        """The "my keys only" rule: None when the principal may see and revoke every key of the
        organisation (``keys.manage_all``), else the user whose keys alone it may (its own)."""
        return None if self.allows(Action.KEYS_MANAGE_ALL) else self.user_id
