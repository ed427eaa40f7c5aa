"""The local stack: the template's resources in moto, its routes and queues wired to the real handlers.

``python -m local`` (``make run``) runs it; nothing here re-implements what a handler does.
"""
