"""``python -m correlator_cli`` = the ``correlator`` console script."""

from correlator_cli.main import main

main()
