"""Correlator core: the event model, its EventBridge envelope, the publisher and the shared API plumbing.

Every Lambda function of the stack imports this package from the core layer; nothing here is
specific to one function.
"""

__version__ = "0.1.0"
