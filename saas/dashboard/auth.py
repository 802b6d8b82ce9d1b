"""Sign-in and password reset: Django's auth views with the email as the login."""

from __future__ import annotations

from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy


class EmailAuthenticationForm(auth_forms.AuthenticationForm):
    """Django's login form, labelled for an email address."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email"
        self.fields["username"].widget.attrs.update({"autocomplete": "email", "type": "email"})


class LoginView(auth_views.LoginView):
    form_class = EmailAuthenticationForm
    redirect_authenticated_user = True


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Also reaches accounts that never had a password (owners created by an operator or the
    API): the reset link is how they set one. Inactive accounts still get nothing."""

    def get_users(self, email):
        return get_user_model().objects.filter(email__iexact=email, is_active=True)


class PasswordResetView(auth_views.PasswordResetView):
    form_class = PasswordResetForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("dashboard:password_reset_done")
