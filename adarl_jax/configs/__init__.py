"""The shipped config files, each a module with `get_config() -> ml_collections.ConfigDict`.

They are loaded by name (`load_config('quick')` or `--config quick`) from this folder, so a
wheel install finds them as a clone does; a path to any other config file works the same way.
The checkout's top-level `configs` is a link to this folder.
"""
