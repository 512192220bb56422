"""`python -m adarl_jax.cli`: the `adarl-jax` command."""

import sys

from adarl_jax.cli.commands import main

sys.exit(main())
