"""`bwv serve`: the web shell over the services, beside the CLI (FastAPI, Jinja2, htmx)."""
