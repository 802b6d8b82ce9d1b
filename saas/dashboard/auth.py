"""Sign-in and password reset: Django's auth views with the email as the login, throttled.

Sign-in: django-axes locks an account out after repeated failures (``AXES_*`` settings,
:func:`locked_out` is its answer). Sign-in, sign-up and password-reset submissions are also
limited per client address (:func:`throttled`); a password reset sends at most a few emails to
one address per window. None of the answers says whether an email has an account.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator

from saas.limits.auth_throttle import auth_attempt_take, password_reset_email_allowed

from .base import error_page


def throttled(scope: str):
    """Decorate a view so that its POSTs take one of the client address's attempts for
    ``scope`` (``login``, ``signup``, ``password_reset``; ``saas.limits.auth_throttle``); past the
    limit the answer is a 429 page with ``Retry-After`` and the view does not run."""

    def wrap(view):
        @functools.wraps(view)
        def inner(request, *args, **kwargs):
            if request.method == "POST":
                decision = auth_attempt_take(scope=scope, request=request)
                if decision is not None and not decision.allowed:
                    wait = max(1, decision.retry_after_seconds)
                    response = error_page(
                        request,
                        429,
                        "Too many attempts",
                        f"Too many attempts from your network. Try again in {wait} seconds.",
                    )
                    response["Retry-After"] = str(wait)
                    return response
            return view(request, *args, **kwargs)

        return inner

    return wrap


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer to a sign-in on a locked-out account (``AXES_LOCKOUT_CALLABLE``):
    a 429 page that says the same for every email, known or not."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60) or 1
    response = error_page(
        request,
        429,
        "Too many failed sign-ins",
        f"Too many failed sign-ins for this account. Try again in {minutes} minutes, "
        "or reset your password.",
    )
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response


class EmailAuthenticationForm(auth_forms.AuthenticationForm):
    """Django's login form, labelled for an email address."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email"
        self.fields["username"].widget.attrs.update({"autocomplete": "email", "type": "email"})


@method_decorator(throttled("login"), name="dispatch")
class LoginView(auth_views.LoginView):
    form_class = EmailAuthenticationForm
    redirect_authenticated_user = True


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Also reaches accounts that never had a password (owners created by an operator or the
    API): the reset link is how they set one. Inactive accounts still get nothing.

    The emailed link is built from ``TRAINYARD_PUBLIC_URL`` (scheme and host), never from the
    request: a forged ``Host`` header must not turn a reset email into a link to someone
    else's server, and behind a TLS proxy the link must say https.
    """

    def get_users(self, email):
        return get_user_model().objects.filter(email__iexact=email, is_active=True)

    def save(
        self,
        domain_override: str | None = None,
        subject_template_name: str = "registration/password_reset_subject.txt",
        email_template_name: str = "registration/password_reset_email.html",
        use_https: bool = False,
        token_generator: PasswordResetTokenGenerator = default_token_generator,
        from_email: str | None = None,
        request: HttpRequest | None = None,
        html_email_template_name: str | None = None,
        extra_email_context: dict[str, str] | None = None,
    ) -> None:
        # domain_override and use_https from the caller (the view passes the request's) are
        # replaced by the public URL's.
        public = urlsplit(settings.TRAINYARD_PUBLIC_URL)
        super().save(
            domain_override=public.netloc,
            subject_template_name=subject_template_name,
            email_template_name=email_template_name,
            use_https=public.scheme == "https",
            token_generator=token_generator,
            from_email=from_email,
            request=request,
            html_email_template_name=html_email_template_name,
            extra_email_context=extra_email_context,
        )


@method_decorator(throttled("password_reset"), name="dispatch")
class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("dashboard:password_reset_done")

    def form_valid(self, form):
        # Past the per-address budget nothing is sent, and the answer is the same "sent".
        if not password_reset_email_allowed(email=form.cleaned_data["email"]):
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)
