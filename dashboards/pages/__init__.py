"""UI pages, one module each; the app imports every module here, so adding a page is adding a
module. A page module:

- calls `dash.register_page(__name__, path=..., name=..., order=...)` (the order places it in
  the navigation);
- has `layout(**url_params)`, a pure function of the URL's query parameters (no database
  reads: Dash calls it with no arguments to validate callbacks), whose controls take their ids
  from `components.param_id(PAGE, name)` so that they write the URL, and which is framed by
  `components.page_layout` (the header, the controls, the status line and the spinner);
- has `register_callbacks(app, context)`, registering its callbacks on that Dash instance
  (never with the global `dash.callback`); they load through `dashboards.data` and draw with
  `dashboards.figures`, and fill the status line. A page about one model registers its model
  picker's callback with `components.register_model_choices` and the callback that draws it
  with `components.register_model_view`.
"""
