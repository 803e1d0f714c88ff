"""``python -m pystatefun``: the ``pystatefun`` command, for when its script is not on PATH."""

from pystatefun.cli import main

__all__: list[str] = []

main()
