"""The shipped tuning grids, each a module with `get_grid()`, loaded by name by `adarl-jax tune`."""
