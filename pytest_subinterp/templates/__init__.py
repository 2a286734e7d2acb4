"""Template interpreters (``--subinterp-start=template``, docs/templates.md), in one place.

Split by where the code runs:

* ``interpreter``: inside a template interpreter: prepared once in the zygote, adopted by the
  battery child that inherits it, unfrozen before it ends;
* ``zygote``: the zygote process: makes and keeps the templates, forks the children that inherit
  them, and keeps a spare child;
* ``start``: the controller: how a battery's interpreters start (fresh or inherited), the
  template fields of its request, and its leak control.

Nothing is imported here: template interpreters import ``interpreter`` from this package.
"""
