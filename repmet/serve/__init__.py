"""metric-serve: few-shot classification and detection as an HTTP service over the runtime
(:mod:`repmet.runtime`), with a web page. Transport only: the runtime enrolls, classifies and
detects; this package adds micro-batching, a gallery that is never lost, limits, metrics and the
page. ``create_app(ServeSettings(...))`` builds the FastAPI app; ``metric-serve`` runs it."""
