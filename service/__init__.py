"""wiro-relay: a production relay for image-to-video jobs on Wiro."""

__version__ = "0.1.0"
