"""Real servers for tests: an ASGI app on uvicorn, on a real loopback socket, in the test's loop."""

from service.servers import bind_loopback, serving, url_of

__all__ = ["bind_loopback", "serving", "url_of"]
