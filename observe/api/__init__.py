"""FastAPI routers, one module per resource; handlers validate, call storage or the pipeline,
and map the result to a response model."""
