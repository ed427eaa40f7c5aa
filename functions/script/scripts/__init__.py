"""Registered scripts of the script action: one module per script, ``run(event, args, context) -> dict | None``.

A module here is a script when its name matches ``[a-z][a-z0-9_]{0,63}`` and it defines ``run``;
rules name it in ``config.script``. Helpers shared by scripts go in modules starting with ``_``.
See docs/actions-data.md ("Writing a script").
"""
