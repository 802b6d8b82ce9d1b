"""Sign-in by email address, case-insensitively (the username is the email as typed at sign-up)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Django's ``ModelBackend``, looking the user up by ``email__iexact``.

    ``authenticate(request, username=<email>, password=...)`` returns the user or None; like
    ``ModelBackend`` it runs the password hasher even for an unknown email (no timing oracle).
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        email = username or kwargs.get("email")
        if not email or password is None:
            return None
        User = get_user_model()
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
