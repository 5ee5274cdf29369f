"""The emulator's HTTP routes, one FastAPI router per concern of the real API."""
