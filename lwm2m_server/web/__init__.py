"""The operators' web dashboard: page shells (Jinja2) and static assets served by the HTTP API's app.

The pages carry no fleet data: their ES modules call the same REST API as the CLI, with the operator's bearer
token from ``sessionStorage``, and follow live views over ``GET /api/events`` with streaming ``fetch()``.
"""
