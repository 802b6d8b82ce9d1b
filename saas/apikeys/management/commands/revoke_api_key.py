"""``manage.py revoke_api_key KEY_ID``: revoke a key (operators; the dashboard does it too)."""

from django.core.management.base import BaseCommand, CommandError

from saas.apikeys.models import ApiKey
from saas.apikeys.services import api_key_revoke
from saas.common.actor import Actor


class Command(BaseCommand):
    help = "Revoke an API key by its id (key_…) or its public prefix (ty_live_…)."

    def add_arguments(self, parser):
        parser.add_argument("key")

    def handle(self, *args, key, **options):
        qs = ApiKey.objects.unscoped_all_tenants()  # operator command: any tenant
        found = (
            qs.filter(pk=key).first()
            or qs.filter(public_id=key.removeprefix("ty_live_")[:12]).first()
        )
        if found is None:
            raise CommandError(f"no API key {key!r}")
        api_key_revoke(api_key=found, actor=Actor.system())
        self.stdout.write(f"revoked {found.pk} ({found.prefix}…)")
