"""Using trained models: the fold models of a workdir, model folders, the Predictor behind
`adarl-jax predict`, its inputs and outputs, and the standalone export.
"""

from adarl_jax.inference.predict import DEFAULT_BUCKETS, plan_batches, Predictor
from adarl_jax.inference.predict_io import (
    AUDIO_EXTENSIONS, LIST_EXTENSIONS, expand_inputs, file_info, InputJob, read_segments,
    write_embeddings, write_predictions)
from adarl_jax.inference.fold_models import CheckpointError, find_fold, FoldRef, restore_variables
from adarl_jax.inference.model_folder import (
    check_target, flat_arrays, ModelFolderError, read_meta, read_model_folder, staging_dir,
    write_model_folder)
from adarl_jax.inference.export import DEFAULT_PLATFORMS, export_predictor, load_exported

__all__ = ["AUDIO_EXTENSIONS", "DEFAULT_BUCKETS", "DEFAULT_PLATFORMS", "LIST_EXTENSIONS", "check_target",
           "CheckpointError", "expand_inputs", "export_predictor", "file_info", "find_fold", "flat_arrays",
           "FoldRef", "InputJob", "load_exported", "ModelFolderError", "plan_batches", "Predictor",
           "read_meta", "read_model_folder", "read_segments", "restore_variables", "staging_dir",
           "write_embeddings", "write_model_folder", "write_predictions"]
