"""The web dashboard under ``/ui``: server-rendered pages (Jinja2) made live with htmx, on the
same core services as the APIs (same rules, same org scoping). ``session.py`` is the login and
CSRF, ``routes.py`` the pages, ``templates/`` and ``static/`` (htmx, vendored and pinned, its
licence beside it) what they are made of."""
