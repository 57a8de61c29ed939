"""``python -m bot.cli`` runs the ``payerbot`` command."""

from bot.cli import main

main()
