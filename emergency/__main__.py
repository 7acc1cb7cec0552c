"""`python -m emergency ...` is the same as the `emergency` command."""

from emergency.cli import main

main()
