"""The Dash UI and the weekly report renderer."""
