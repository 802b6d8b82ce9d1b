"""Customer dashboard pages: thin views over the same services and selectors as ``/v1``.

One module per page group (``signup``, ``home``, ``datasets``, ``jobs``, ``models``, ``keys``,
``members``, ``billing``); ``saas.dashboard.urls`` routes to them. A view reads through the
selectors, writes through the services, turns what it read into page values with the pure
functions of :mod:`saas.dashboard.presenters`, and renders.

Every page is readable without JavaScript; htmx (from django-htmx) adds live job updates,
in-place "try it" answers and the upload progress bar. Objects are always fetched through the
tenant-scoped selectors with ``request.tenant.organization``, so another tenant's id is a 404.
"""
