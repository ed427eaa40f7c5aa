"""``correlator``: the operator's command line for a Correlator stack, local or deployed."""
