"""kaohe engine: load -> check -> compile -> evaluate -> decide -> report.

The engine is a library; `cli.py` is a thin shell over it.
"""

__version__ = "0.1.0"
