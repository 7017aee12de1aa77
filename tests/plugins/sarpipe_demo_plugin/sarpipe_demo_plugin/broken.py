"""A plugin module that cannot be imported: sarpipe must report it, not crash."""

import sarpipe_demo_plugin_missing_dependency  # noqa: F401

STAGE = None
