"""The operator console (``/console/``): staff-only pages beside the read-only Django admin.

Every view is wrapped by :func:`saas.console.base.staff_page`: a signed-in user who is not staff
(a tenant owner included) gets the same 404 as a missing page, so the console's existence is
not revealed; an anonymous visitor is sent to the admin sign-in. Actions call the domain
services with the staff user as the :class:`~saas.common.actor.Actor`, so each lands in the
tenant's own audit log.
"""
