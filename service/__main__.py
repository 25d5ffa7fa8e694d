"""``python -m service`` is ``wiro-relay``."""

from service.cli import main

main()
