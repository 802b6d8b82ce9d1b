"""/v1/billing: the organisation's plan, status, spend cap and the current period so far."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from saas.billing import pricing, stripe_sync
from saas.billing.selectors import billing_account_get, period_charges, usage_levels
from saas.billing.services.accounts import billing_account_update, checkout_url
from saas.tenancy.permissions import Action

from ..base import TenantAPIView


class BillingPatchIn(serializers.Serializer):
    monthly_spend_cap = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal(0), allow_null=True
    )


def _money(x: Decimal) -> str:
    return f"{x:.2f}"


class BillingView(TenantAPIView):
    """The billing account: plan, status, spend cap, and the current month's charges so far."""

    actions = {"GET": Action.INVOICES_READ, "PATCH": Action.BILLING_MANAGE}

    def _body(self):
        account = billing_account_get(organization=self.organization)
        start, end = pricing.month_bounds(timezone.now().date())
        computed = period_charges(organization=self.organization, start=start, end=end)
        return {
            "object": "billing_account",
            "plan": account.plan.code,
            "status": account.status,
            "currency": account.plan.currency,
            "monthly_spend_cap": _money(account.monthly_spend_cap)
            if account.monthly_spend_cap is not None
            else None,
            "usage_levels": [
                {
                    "meter": lv["meter"],
                    "used": f"{lv['used'].normalize():f}",
                    "included": f"{lv['included'].normalize():f}",
                    "percent": lv["percent"],
                    "warning": "limit reached"
                    if lv["percent"] >= 100
                    else ("80% used" if lv["percent"] >= 80 else None),
                }
                for lv in usage_levels(organization=self.organization)
            ],
            "current_period": {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "lines": [
                    {
                        "kind": ln.kind,
                        "meter": ln.meter or None,
                        "description": ln.description,
                        "quantity": f"{ln.quantity.normalize():f}",
                        "unit_price": f"{ln.unit_price.normalize():f}",
                        "amount": _money(ln.amount),
                    }
                    for ln in computed.lines
                ],
                "subtotal": _money(computed.subtotal),
                "credit_applied": _money(computed.credit_applied),
                "tax": _money(computed.tax),
                "total": _money(computed.total),
            },
        }

    @extend_schema(responses={200: OpenApiResponse(description="billing account")})
    def get(self, request):
        return Response(self._body())

    @extend_schema(
        request=BillingPatchIn, responses={200: OpenApiResponse(description="billing account")}
    )
    def patch(self, request):
        ser = BillingPatchIn(data=request.data)
        ser.is_valid(raise_exception=True)
        billing_account_update(
            organization=self.organization, actor=self.actor, **ser.validated_data
        )
        return Response(self._body())


class CheckoutIn(serializers.Serializer):
    plan = serializers.SlugField()


class BillingCheckoutView(TenantAPIView):
    """Start an upgrade through Stripe Checkout: returns ``{"url"}`` to redirect the user to."""

    actions = {"POST": Action.BILLING_MANAGE}

    @extend_schema(
        request=CheckoutIn,
        responses={200: OpenApiResponse(description='{"url": "https://checkout…"}')},
    )
    def post(self, request):
        ser = CheckoutIn(data=request.data)
        ser.is_valid(raise_exception=True)
        url = checkout_url(
            organization=self.organization, plan_code=ser.validated_data["plan"], actor=self.actor
        )
        return Response({"url": url})


class BillingPortalView(TenantAPIView):
    """A Stripe customer-portal link (cards, invoices, cancellation): returns ``{"url"}``."""

    actions = {"POST": Action.BILLING_MANAGE}

    @extend_schema(
        request=None,
        responses={200: OpenApiResponse(description='{"url": "https://billing.stripe…"}')},
    )
    def post(self, request):
        account = billing_account_get(organization=self.organization)
        return Response({"url": stripe_sync.portal_session_create(account=account)})
