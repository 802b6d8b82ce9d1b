"""Sign-up: a new person with their own organisation, or joining one by invitation."""

from __future__ import annotations

from dataclasses import replace

from django.contrib.auth import get_user_model
from django.db import transaction

from saas.common.actor import Actor
from saas.common.errors import ValidationFailed

from ..models import Membership
from .invitations import invitation_accept
from .organizations import _organization_with_free_slug


@transaction.atomic
def account_signup(
    *,
    email: str,
    password: str,
    organization_name: str | None = None,
    invitation_token: str | None = None,
    actor: Actor,
) -> Membership:
    """Sign a new person up: create the user (the email is the login) and either a new
    organisation they own, on the free plan, or — with ``invitation_token`` — join the
    inviting one with the invited role. Returns the membership.

    ``actor`` is the anonymous client (its ``ip``); the audit events name the new user as
    their actor. The caller validates the email (not taken) and password (Django's
    validators). Raises NotFound for an unusable invitation, ValidationFailed if neither an
    organisation name nor an invitation is given.
    """
    if not organization_name and not invitation_token:
        raise ValidationFailed(
            "Name an organisation or use an invitation.",
            errors=[{"field": "organization", "message": "this field is required"}],
        )
    user = get_user_model().objects.create_user(username=email, email=email, password=password)
    actor = replace(actor, user_id=user.pk)
    if invitation_token:
        return invitation_accept(token=invitation_token, user=user, actor=actor)
    assert organization_name  # checked above: no invitation means a name was given
    org = _organization_with_free_slug(name=organization_name, owner_email=user.email, actor=actor)
    return Membership.objects.select_related("organization", "user").get(
        organization=org, user=user
    )
