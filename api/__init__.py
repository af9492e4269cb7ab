"""The HTTP service: FastAPI app, settings, database, and the wiring of domain and storage."""
