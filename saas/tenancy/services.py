"""Writes for organisations and memberships."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import Membership, Organization


@transaction.atomic
def organization_create(
    *, slug: str, name: str, owner_email: str, plan: str = "free"
) -> Organization:
    """Create an organisation and make ``owner_email`` (created if new) its owner.

    Raises ``django.db.IntegrityError`` if the slug is taken.
    """
    org = Organization.objects.create(slug=slug, name=name, plan=plan)
    User = get_user_model()
    user = User.objects.filter(email__iexact=owner_email).first()
    if user is None:
        user = User.objects.create_user(username=owner_email, email=owner_email)
        user.set_unusable_password()
        user.save(update_fields=["password"])
    Membership.objects.create(organization=org, user=user, role=Membership.Role.OWNER)
    return org
