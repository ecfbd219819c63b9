"""`python -m crema_tools` is the `crema-tools` command."""

from .cli import main

main()
