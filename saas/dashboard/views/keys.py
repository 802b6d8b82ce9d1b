"""API key pages: the list with the create form (the secret shown once), revoking."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.views.decorators.http import require_POST

from saas.apikeys import selectors as key_selectors
from saas.apikeys import services as key_services
from saas.tenancy.permissions import Action

from ..base import org_page
from ..forms import ApiKeyForm
from .common import LIST_LIMIT, bound, page


@org_page(read=Action.KEYS_READ, write=Action.KEYS_MANAGE_OWN)
def keys(request):
    """List keys (developers: their own; admins and owners: all) and create one. The secret is
    in this one response only (never stored, never in a redirect)."""
    org = request.tenant.organization
    mine_only = request.tenant.access.keys_created_by
    form = ApiKeyForm(bound(request))
    issued = None
    status = 200
    used = request.session.get("used_key_form_tokens", [])
    if request.method == "POST":
        token = request.POST.get("form_token", "")
        if token and token in used:
            # A reload of the page that showed a new key: never create a second one.
            messages.info(request, "That key was already created; its secret was shown once.")
            return redirect("dashboard:keys")
        if form.is_valid():
            request.session["used_key_form_tokens"] = [*used[-19:], token]
            issued = key_services.api_key_create(
                organization=org,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                created_by=request.user,
                expires_at=form.cleaned_data.get("expires_at"),
                actor=request.tenant.actor,
            )
            form = ApiKeyForm()
        else:
            status = 400
    rows = key_selectors.api_key_list(organization_id=org.pk, created_by_id=mine_only)
    response = page(
        request,
        "dashboard/keys/list.html",
        {
            "form": form,
            "issued": issued,
            "keys": rows[:LIST_LIMIT],
            "now": timezone.now(),
            "base_url": request.build_absolute_uri("/").rstrip("/"),
            "form_token": get_random_string(24),
        },
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


@org_page(write=Action.KEYS_MANAGE_OWN)
@require_POST
def key_revoke(request, key_id: str):
    """Revoke a key (developers: only their own); its next request gets 401."""
    org = request.tenant.organization
    mine_only = request.tenant.access.keys_created_by
    key = key_selectors.api_key_get(organization_id=org.pk, key_id=key_id, created_by_id=mine_only)
    key_services.api_key_revoke(api_key=key, actor=request.tenant.actor)
    messages.success(request, f"Key {key.prefix}… revoked; its next request gets 401.")
    return redirect("dashboard:keys")
