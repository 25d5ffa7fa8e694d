"""Thin HTTP handlers: parse and check the request, call the relay, shape the answer."""
