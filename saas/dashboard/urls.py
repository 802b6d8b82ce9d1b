"""Dashboard routes: sign-up and sign-in at the root, the app under /app/."""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy
from django.views.generic import RedirectView

from . import auth
from .views import billing, datasets, home, jobs, keys, members, models, signup

app_name = "dashboard"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard:home"), name="root"),
    path("signup", signup.signup, name="signup"),
    path("signup/sent", signup.signup_sent, name="signup_sent"),
    path("signup/confirm/<uidb64>/<token>", signup.signup_confirm, name="signup_confirm"),
    path("login", auth.LoginView.as_view(), name="login"),
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset", auth.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>",
        auth_views.PasswordResetConfirmView.as_view(
            success_url=reverse_lazy("dashboard:password_reset_complete")
        ),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("invitations/accept", signup.invitation_accept, name="invitation_accept"),
    path("app/", home.home, name="home"),
    path("app/organization", signup.switch_organization, name="switch_organization"),
    path("app/datasets", datasets.datasets, name="datasets"),
    path("app/datasets/new", datasets.dataset_new, name="dataset_new"),
    path("app/datasets/<str:dataset_id>", datasets.dataset_detail, name="dataset"),
    path(
        "app/datasets/<str:dataset_id>/thumbnails/<int:n>.png",
        datasets.dataset_thumbnail,
        name="dataset_thumbnail",
    ),
    path("app/datasets/<str:dataset_id>/delete", datasets.dataset_delete, name="dataset_delete"),
    path("app/training", jobs.jobs, name="jobs"),
    path("app/training/new", jobs.job_new, name="job_new"),
    path("app/training/estimate", jobs.job_estimate, name="job_estimate"),
    path("app/training/<str:job_id>", jobs.job_detail, name="job"),
    path("app/training/<str:job_id>/cancel", jobs.job_cancel, name="job_cancel"),
    path("app/models", models.models, name="models"),
    path("app/models/<str:model_id>", models.model_detail, name="model"),
    path("app/models/<str:model_id>/try", models.model_try, name="model_try"),
    path("app/models/<str:model_id>/delete", models.model_delete, name="model_delete"),
    path("app/api-keys", keys.keys, name="keys"),
    path("app/api-keys/<str:key_id>/revoke", keys.key_revoke, name="key_revoke"),
    path("app/members", members.members, name="members"),
    path(
        "app/invitations/<str:invitation_id>/revoke",
        members.invitation_revoke,
        name="invitation_revoke",
    ),
    path("app/members/<str:member_id>/role", members.member_role, name="member_role"),
    path("app/members/<str:member_id>/remove", members.member_remove, name="member_remove"),
    path("app/billing", billing.billing_page, name="billing"),
    path("app/billing/checkout", billing.billing_checkout, name="billing_checkout"),
]
