"""UI pages, one module each: `register_page(__name__, ...)`, `layout(**url_params)` and
`register_callbacks(app, context)`. The app imports every module here."""
