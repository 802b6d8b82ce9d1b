"""Sign-in, sign-up and password reset against hostile clients: forged Host headers, TLS
proxies, guessing passwords, flooding, and asking which emails have accounts.

Real PostgreSQL (django-axes' attempt rows) and Redis (the per-address token buckets).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from saas.settings import proxy_ssl_header
from saas.tenancy.models import Membership, Organization
from scripts.stack import ROOT
from tests.conftest import Org

from .conftest import html

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


def user(email: str, password: str = PASSWORD):
    return get_user_model().objects.create_user(username=email, email=email, password=password)


# --- links from TRAINYARD_PUBLIC_URL, not from the Host header ---------------------------------


def test_reset_link_ignores_a_forged_host(settings):
    settings.ALLOWED_HOSTS = ["*"]  # even a permissive deployment
    settings.TRAINYARD_PUBLIC_URL = "https://app.trainyard.example"
    user("ada@x.test")
    r = Client().post("/password-reset", {"email": "ada@x.test"}, HTTP_HOST="evil.example")
    assert r.status_code == 302
    [msg] = mail.outbox
    links = re.findall(r"\w+://\S+", msg.body)
    assert links and all(
        u.startswith("https://app.trainyard.example/password-reset/") for u in links
    )
    assert "evil.example" not in msg.body


def test_reset_link_is_https_behind_a_tls_proxy_even_over_plain_http(settings):
    settings.TRAINYARD_PUBLIC_URL = "https://app.trainyard.example"
    user("ada@x.test")
    Client().post("/password-reset", {"email": "ada@x.test"})  # arrives as http://testserver
    assert "https://app.trainyard.example/password-reset/" in mail.outbox[0].body
    assert "testserver" not in mail.outbox[0].body


def test_a_host_outside_allowed_hosts_is_a_400_and_sends_nothing():
    user("ada@x.test")
    r = Client().post("/password-reset", {"email": "ada@x.test"}, HTTP_HOST="evil.example")
    assert r.status_code == 400
    assert mail.outbox == []


def test_confirmation_and_notice_links_ignore_a_forged_host(
    settings, django_capture_on_commit_callbacks
):
    settings.ALLOWED_HOSTS = ["*"]
    settings.TRAINYARD_PUBLIC_URL = "https://app.trainyard.example"
    user("taken@x.test")
    with django_capture_on_commit_callbacks(execute=True):
        for email in ("new@x.test", "taken@x.test"):
            Client().post(
                "/signup",
                {"email": email, "password": PASSWORD, "organization": "X"},
                HTTP_HOST="evil.example",
            )
    assert len(mail.outbox) == 2
    for msg in mail.outbox:
        links = re.findall(r"\w+://\S+", msg.body)
        assert links and all(u.startswith("https://app.trainyard.example/") for u in links)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", None),
        ("  ", None),
        ("X-Forwarded-Proto: https", ("HTTP_X_FORWARDED_PROTO", "https")),
        ("X-Forwarded-Proto=https", ("HTTP_X_FORWARDED_PROTO", "https")),
        ("x-forwarded-ssl : on", ("HTTP_X_FORWARDED_SSL", "on")),
    ],
)
def test_proxy_ssl_header_setting(value, expected):
    assert proxy_ssl_header(value) == expected


@pytest.mark.parametrize("value", ["X-Forwarded-Proto", "X-Forwarded-Proto:", ": https", "="])
def test_a_malformed_proxy_ssl_header_is_refused_at_start(value):
    import environ

    with pytest.raises(environ.ImproperlyConfigured):
        proxy_ssl_header(value)


def _settings_in_a_fresh_process(env: dict[str, str]) -> dict:
    """The settings a real process gets from ``env`` (no test environment around it)."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'hosts': s.ALLOWED_HOSTS, 'email': s.EMAIL_BACKEND, "
        "'ssl': s.SECURE_PROXY_SSL_HEADER, 'mail_dir': str(s.EMAIL_FILE_PATH)}))"
    )
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ALLOWED_HOSTS", "EMAIL_BACKEND", "EMAIL_URL", "DEBUG")
        and not k.startswith("TRAINYARD_PROXY")
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "saas.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_production_defaults_answer_no_testserver_and_print_no_mail(tmp_path):
    got = _settings_in_a_fresh_process({"TRAINYARD_VAR_DIR": str(tmp_path)})
    assert "testserver" not in got["hosts"]
    assert got["email"] == "django.core.mail.backends.filebased.EmailBackend"
    assert got["mail_dir"] == str(tmp_path / "mail")
    assert got["ssl"] is None
    debug = _settings_in_a_fresh_process({"DEBUG": "true", "TRAINYARD_VAR_DIR": str(tmp_path)})
    assert debug["email"] == "django.core.mail.backends.console.EmailBackend"
    proxied = _settings_in_a_fresh_process(
        {"TRAINYARD_PROXY_SSL_HEADER": "X-Forwarded-Proto: https"}
    )
    assert proxied["ssl"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    smtp = _settings_in_a_fresh_process({"EMAIL_URL": "smtp+tls://u:p@mail.example:587"})
    assert smtp["email"] == "django.core.mail.backends.smtp.EmailBackend"


def test_behind_the_configured_proxy_header_requests_are_secure(settings):
    settings.SECURE_PROXY_SSL_HEADER = proxy_ssl_header("X-Forwarded-Proto: https")
    c = Client()
    r = c.get("/login", HTTP_X_FORWARDED_PROTO="https")
    assert r.wsgi_request.is_secure()
    assert not c.get("/login").wsgi_request.is_secure()


# --- sign-up reveals nothing ------------------------------------------------------------------


def _signup(email: str, password: str = PASSWORD, organization: str = "Acme Two", **kw):
    return Client(**kw).post(
        "/signup", {"email": email, "password": password, "organization": organization}
    )


def test_sign_up_with_an_existing_email_answers_like_a_new_one_and_mails_the_owner(
    django_capture_on_commit_callbacks,
):
    owner = user("taken@x.test")
    before_hash = owner.password
    with django_capture_on_commit_callbacks(execute=True):
        new = _signup("fresh@x.test")
        taken = _signup("TAKEN@x.test", password="another-pass-phrase-3")
    assert (new.status_code, new["Location"]) == (taken.status_code, taken["Location"])
    assert html(Client().get(new["Location"])) == html(Client().get(taken["Location"]))
    notice = next(m for m in mail.outbox if m.to == ["taken@x.test"])
    assert "already has one" in notice.body and "/password-reset" in notice.body
    assert "/signup/confirm/" not in notice.body
    owner.refresh_from_db()
    assert owner.password == before_hash and owner.is_active  # nothing changed
    assert not Membership.objects.filter(user=owner).exists()
    assert Organization.objects.filter(name="Acme Two").count() == 1  # only the new person's


def test_signing_up_again_before_confirming_replaces_the_password_and_the_link(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        _signup("squat@x.test", password="attacker-pass-phrase-1")
        _signup("squat@x.test", password=PASSWORD)
    first, second = (re.search(r"(/signup/confirm/\S+)", m.body).group(1) for m in mail.outbox)
    c = Client()
    assert "expired" in html(c.get(first))  # the first link is void
    assert c.post(second, {"password": "attacker-pass-phrase-1"}).status_code == 200
    r = c.post(second, {"password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == "/app/"
    assert Organization.objects.count() == 1


def test_a_confirmation_link_is_not_a_password_reset_link(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _signup("ada@x.test")
    uid, token = re.search(r"/signup/confirm/(\S+)/(\S+)", mail.outbox[0].body).groups()
    r = Client().get(f"/password-reset/{uid}/{token}", follow=True)
    assert "expired" in html(r)


@pytest.mark.parametrize(
    "path", ["/signup/confirm/xx/yy", "/signup/confirm/MQ/zzz-zzz", "/signup/confirm/%00/%ff"]
)
def test_bad_confirmation_links_are_404_pages(path):
    r = Client().get(path)
    assert r.status_code == 404


# --- lockout and per-address limits -----------------------------------------------------------


def _login(email: str, password: str, ip: str = "198.51.100.7"):
    return Client(REMOTE_ADDR=ip).post("/login", {"username": email, "password": password})


def test_an_account_locks_after_five_failures_even_for_the_right_password(settings):
    user("bo@x.test")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login("bo@x.test", "wrong").status_code == 200
    locked = _login("BO@x.test", "wrong", ip="203.0.113.50")  # any case, any address
    assert locked.status_code == 429
    r = _login("bo@x.test", PASSWORD, ip="203.0.113.51")
    assert r.status_code == 429 and "Retry-After" in r
    assert "_auth_user_id" not in r.wsgi_request.session
    # Another account is not affected.
    user("cy@x.test")
    assert _login("cy@x.test", PASSWORD).status_code == 302


def test_lockout_says_the_same_for_unknown_emails(settings):
    user("bo@x.test")
    pages = {}
    for email in ("bo@x.test", "nobody@x.test"):
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _login(email, "wrong")
        r = _login(email, "wrong")
        # The page, less the per-request CSRF token.
        pages[email] = (r.status_code, re.sub(r"[A-Za-z0-9]{64}", "<csrf>", html(r)))
    assert pages["bo@x.test"] == pages["nobody@x.test"]
    assert pages["bo@x.test"][0] == 429


def test_a_success_resets_the_failure_count(settings):
    user("bo@x.test")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login("bo@x.test", "wrong")
    assert _login("bo@x.test", PASSWORD).status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login("bo@x.test", "wrong").status_code == 200


@pytest.mark.parametrize(
    "path, data",
    [
        ("/login", {"username": "x@x.test", "password": "whatever-1"}),
        ("/signup", {"email": "x@x.test", "password": PASSWORD, "organization": "X"}),
        ("/password-reset", {"email": "x@x.test"}),
    ],
)
def test_each_door_is_limited_per_client_address(settings, path, data):
    settings.TRAINYARD_AUTH_ATTEMPTS_PER_IP = 3
    settings.AXES_FAILURE_LIMIT = 100  # the per-address limit is what is tested here
    busy = Client(REMOTE_ADDR="198.51.100.9")
    for _ in range(3):
        assert busy.post(path, data).status_code in (200, 302)
    refused = busy.post(path, data)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "Too many attempts" in html(refused)
    # Another address still gets in; a GET of the form is never limited.
    assert Client(REMOTE_ADDR="198.51.100.10").post(path, data).status_code in (200, 302)
    assert busy.get(path).status_code == 200


def test_limited_sign_ups_create_nothing(settings):
    settings.TRAINYARD_AUTH_ATTEMPTS_PER_IP = 1
    c = Client(REMOTE_ADDR="198.51.100.11")
    c.post("/signup", {"email": "a@x.test", "password": PASSWORD, "organization": "A"})
    r = c.post("/signup", {"email": "b@x.test", "password": PASSWORD, "organization": "B"})
    assert r.status_code == 429
    assert not get_user_model().objects.filter(email="b@x.test").exists()


def test_password_reset_mails_one_address_at_most_a_few_times(settings):
    Org("acme")
    answers = set()
    for i in range(settings.TRAINYARD_PASSWORD_RESETS_PER_EMAIL + 3):
        # From many addresses: the budget is the target's, not the sender's.
        r = Client(REMOTE_ADDR=f"198.51.100.{20 + i}").post(
            "/password-reset", {"email": "owner@acme.test"}
        )
        answers.add((r.status_code, r["Location"]))
    assert answers == {(302, "/password-reset/sent")}
    assert len(mail.outbox) == settings.TRAINYARD_PASSWORD_RESETS_PER_EMAIL


def test_the_admin_sign_in_is_limited_and_locked_out_too(settings):
    settings.TRAINYARD_AUTH_ATTEMPTS_PER_IP = 2
    staff = user("staff@x.test")
    staff.is_staff = True
    staff.save()
    c = Client(REMOTE_ADDR="198.51.100.30")
    data = {"username": "staff@x.test", "password": "wrong", "next": "/admin/"}
    assert c.post("/admin/login/", data).status_code == 200
    assert c.post("/admin/login/", data).status_code == 200
    assert c.post("/admin/login/", data).status_code == 429
    # The lockout counts admin failures with the dashboard's.
    settings.TRAINYARD_AUTH_ATTEMPTS_PER_IP = 100
    for _ in range(settings.AXES_FAILURE_LIMIT - 2):
        _login("staff@x.test", "wrong")
    assert _login("staff@x.test", PASSWORD).status_code == 429
