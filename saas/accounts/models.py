"""The custom user: people log in with their email address."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person. Belongs to organisations through ``tenancy.Membership``."""

    email = models.EmailField(unique=True)

    REQUIRED_FIELDS = ["email"]
