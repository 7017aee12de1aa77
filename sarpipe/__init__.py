"""sarpipe: SAR raw echoes to focused images, with RFI detection and cleanup.

Importing the package is cheap: submodules (and torch) load only when used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
