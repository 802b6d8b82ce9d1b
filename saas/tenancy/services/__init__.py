"""Writes for organisations, memberships and invitations (each with its audit event), one
module per concern; every public name is re-exported here, so ``tenancy.services.x`` works.

Every write takes ``actor`` (keyword, required): the user or API key behind it, or
``Actor.system()`` for the command line and tasks. It is recorded in the same transaction.
"""

from .invitations import (
    IssuedInvitation,
    invitation_accept,
    invitation_create,
    invitation_peek,
    invitation_revoke,
)
from .memberships import membership_change_role, membership_remove
from .organizations import (
    _user_for_email,
    organization_create,
    organization_reactivate,
    organization_suspend,
)
from .signup import (
    account_confirm,
    account_confirm_user,
    account_signup,
    account_signup_request,
)

__all__ = [
    "IssuedInvitation",
    "_user_for_email",
    "account_confirm",
    "account_confirm_user",
    "account_signup",
    "account_signup_request",
    "invitation_accept",
    "invitation_create",
    "invitation_peek",
    "invitation_revoke",
    "membership_change_role",
    "membership_remove",
    "organization_create",
    "organization_reactivate",
    "organization_suspend",
]
