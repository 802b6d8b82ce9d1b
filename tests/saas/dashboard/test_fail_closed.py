"""The dashboard's guard fails closed, like the API's base class: a page must declare what each
method needs, and a method it did not declare is refused before the view runs."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from saas.dashboard.base import MEMBERSHIP, org_page
from saas.tenancy.permissions import Action

pytestmark = pytest.mark.django_db


def test_a_page_declaring_no_requirement_is_an_error_when_decorated():
    with pytest.raises(TypeError, match="read= and/or write="):

        @org_page()
        def page(request):
            raise AssertionError("never defined")


def _request(method: str, user):
    request = getattr(RequestFactory(), method.lower())("/app/x")
    request.user = user
    request.session = {}
    return request


@pytest.mark.parametrize(
    "declared, method",
    [
        ({"read": Action.DATASETS_READ}, "POST"),
        ({"write": Action.DATASETS_WRITE}, "GET"),
        ({"read": MEMBERSHIP}, "PUT"),
        ({"write": MEMBERSHIP}, "DELETE"),
    ],
)
def test_an_undeclared_method_is_refused_before_the_view_runs(acme, declared, method):
    ran = []

    @org_page(**declared)
    def page(request):
        ran.append(request.method)
        raise AssertionError("the view must not run")

    response = page(_request(method, acme.users["owner"]))
    assert response.status_code == 405
    assert ran == []


def test_membership_lets_any_member_in_and_an_action_is_checked(acme):
    @org_page(read=MEMBERSHIP, write=Action.MEMBERS_MANAGE)
    def page(request):
        return HttpResponse(request.method)

    viewer = acme.users["viewer"]
    assert page(_request("GET", viewer)).status_code == 200
    assert page(_request("POST", viewer)).status_code == 403
    assert page(_request("POST", acme.users["owner"])).status_code == 200
