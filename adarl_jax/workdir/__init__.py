"""The workdir on disk: its layout, the pinned config, fold locks, result records and atomic
file writes.
"""

from adarl_jax.workdir.layout import (
    RESULT_FILE, RESULTS_GLOB, collect, fold_dir, fold_dirs, fold_name, parse_fold_name, result_path)
from adarl_jax.workdir.pinning import (
    check_workdir_config, ConfigMismatchError, flatten, format_differences, mismatch_message,
    pin_fold_config, pinned_differences, read_config, supersede, workdir_differences,
    write_workdir_config)
from adarl_jax.workdir.locks import (
    describe, FoldLocks, is_stale, live_foreign_locks, lock_path, me, parent_marker, read_owner,
    WorkdirLockedError)
from adarl_jax.workdir.files import (
    digest, read_json, save_npy_atomic, write_atomic, write_bytes_atomic, write_json_atomic,
    write_text_atomic)
from adarl_jax.workdir.fold_record import HEADER, refitted_on_val
from adarl_jax.workdir.kept_variant import KEPT_DIR, keep_variant_file

__all__ = ["HEADER", "KEPT_DIR", "RESULT_FILE", "RESULTS_GLOB", "check_workdir_config", "collect",
           "ConfigMismatchError", "describe", "digest", "flatten", "fold_dir", "fold_dirs", "fold_name",
           "FoldLocks", "format_differences", "is_stale", "keep_variant_file", "live_foreign_locks",
           "lock_path", "me", "mismatch_message", "parent_marker", "parse_fold_name", "pin_fold_config",
           "pinned_differences", "read_config", "read_json", "read_owner", "refitted_on_val", "result_path",
           "save_npy_atomic", "supersede", "workdir_differences", "WorkdirLockedError", "write_atomic",
           "write_bytes_atomic", "write_json_atomic", "write_text_atomic", "write_workdir_config"]
