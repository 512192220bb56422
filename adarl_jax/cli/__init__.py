"""The `adarl-jax` command line: parser, help texts, commands and error messages.
"""

from adarl_jax.cli.commands import main

__all__ = ["main"]
