"""The smoke functions as a module-level ``StatefulFunctions`` of ``pystatefun.sdk``, for an
embedded endpoint (``import: smoke_embedded.py:functions``)."""

from smoke_functions import build

import pystatefun.sdk as sf

functions = build(sf)
