"""Sign-up: a new person with their own organisation, or joining one by invitation."""

from __future__ import annotations

from dataclasses import replace

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from saas.accounts.models import User
from saas.common.actor import Actor
from saas.common.errors import ValidationFailed

from ..audit import audit_record
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
    active: bool = True,
    actor: Actor,
) -> Membership:
    """Sign a new person up: create the user (the email is the login) and either a new
    organisation they own, on the free plan, or — with ``invitation_token`` — join the
    inviting one with the invited role. Returns the membership.

    ``actor`` is the anonymous client (its ``ip``); the audit events name the new user as
    their actor. The caller validates the email (not taken) and password (Django's
    validators). ``active=False`` creates the user unable to sign in until they confirm
    their address (:func:`account_signup_request`). Raises NotFound for an unusable
    invitation, ValidationFailed if neither an organisation name nor an invitation is given.
    """
    if not organization_name and not invitation_token:
        raise ValidationFailed(
            "Name an organisation or use an invitation.",
            errors=[{"field": "organization", "message": "this field is required"}],
        )
    user = get_user_model().objects.create_user(
        username=email, email=email, password=password, is_active=active
    )
    actor = replace(actor, user_id=user.pk)
    if invitation_token:
        return invitation_accept(token=invitation_token, user=user, actor=actor)
    assert organization_name  # checked above: no invitation means a name was given
    org = _organization_with_free_slug(name=organization_name, owner_email=user.email, actor=actor)
    return Membership.objects.select_related("organization", "user").get(
        organization=org, user=user
    )


class _ConfirmTokens(PasswordResetTokenGenerator):
    """Sign-up confirmation tokens: Django's reset-token scheme (HMAC of the user's id, password
    hash, last log-in and a timestamp; ``PASSWORD_RESET_TIMEOUT``) under a salt of its own, so a
    confirmation link is never also a password-reset link. Confirming signs the user in, which
    changes the last log-in: each link works once."""

    key_salt = "saas.tenancy.signup.confirm"


confirm_tokens = _ConfirmTokens()


def _public(path: str) -> str:
    return settings.TRAINYARD_PUBLIC_URL.rstrip("/") + path


@transaction.atomic
def account_signup_request(
    *, email: str, password: str, organization_name: str, actor: Actor
) -> None:
    """The dashboard's sign-up without an invitation, answering the same whether or not
    ``email`` has an account (nothing is returned; the caller shows "check your email").

    - No account: create the user, not yet able to sign in, and their organisation
      (:func:`account_signup` with ``active=False``), and email a confirmation link
      (``/signup/confirm/<uid>/<token>``) to the address.
    - An account not yet confirmed (inactive, never signed in): someone is signing up again;
      the new password replaces the old (which also voids the previous link) and a new link
      is emailed, so whoever signed up first with someone else's address cannot keep it.
    - An account in use: nothing changes; its owner is emailed that someone tried to sign up
      with their address, with the log-in and password-reset links.

    Mail goes out after commit. Links come from ``TRAINYARD_PUBLIC_URL``, never the request.
    """
    existing = get_user_model().objects.filter(email__iexact=email).first()
    if existing is not None and (existing.is_active or existing.last_login is not None):
        to = existing.email
        transaction.on_commit(
            lambda: send_mail(
                subject="Someone tried to sign up to Trainyard with your address",
                message=(
                    "Someone (perhaps you) asked to create a Trainyard account for this "
                    "address, which already has one. Nothing was changed.\n\n"
                    f"Log in: {_public(reverse('dashboard:login'))}\n"
                    f"Forgot your password? {_public(reverse('dashboard:password_reset'))}\n\n"
                    "If it was not you, you can ignore this email.\n"
                ),
                from_email=None,
                recipient_list=[to],
            )
        )
        return
    if existing is not None:
        existing.set_password(password)
        existing.save(update_fields=["password"])
        user = existing
    else:
        user = account_signup(
            email=email,
            password=password,
            organization_name=organization_name,
            active=False,
            actor=actor,
        ).user
    link = _public(
        reverse(
            "dashboard:signup_confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": confirm_tokens.make_token(user),
            },
        )
    )
    to = user.email
    transaction.on_commit(
        lambda: send_mail(
            subject="Confirm your Trainyard account",
            message=(
                "Welcome to Trainyard. Confirm this address to finish creating your account "
                "(the link works once; you will be asked for the password you chose):\n"
                f"{link}\n\nIf it was not you, ignore this email: no account is usable "
                "until the address is confirmed.\n"
            ),
            from_email=None,
            recipient_list=[to],
        )
    )


def account_confirm_user(*, uidb64: str, token: str) -> User | None:
    """The not-yet-confirmed user a confirmation link stands for, or None when the link is
    malformed, expired, already used or not for an unconfirmed account. Changes nothing."""
    try:
        pk = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
        return None
    user = get_user_model().objects.filter(pk=pk, is_active=False, last_login=None).first()
    if user is None or not confirm_tokens.check_token(user, token):
        return None
    return user


@transaction.atomic
def account_confirm(*, uidb64: str, token: str, password: str, actor: Actor) -> User | None:
    """Confirm a sign-up: with a valid link and the password chosen at sign-up, the account
    becomes active (the caller signs the user in, which spends the link). Returns the user,
    or None for a bad link or a wrong password (the same answer: the caller says "link or
    password not valid")."""
    user = account_confirm_user(uidb64=uidb64, token=token)
    if user is None or not user.check_password(password):
        return None
    get_user_model().objects.filter(pk=user.pk, is_active=False).update(is_active=True)
    user.is_active = True
    actor = replace(actor, user_id=user.pk)
    for org_id in Membership.objects.filter(user=user).values_list("organization_id", flat=True):
        audit_record(
            organization_id=org_id,
            action="user.confirmed",
            actor=actor,
            target_type="user",
            target_id=str(user.pk),
            user=user.email,
        )
    return user
