"""Reading a corpus into spectrogram segments: audio files, the front end (Sec. 3.1), corpora
and CSV manifests, the cached segment dataset, LOSO folds and the optional augmentations.
"""

from adarl_jax.data.audio import (
    SILENCE_DBFS, AudioError, iter_segments, level_warning, load_audio, prepare_wave, segment,
    segment_count)
from adarl_jax.data.frontend import (
    FLAT_SPAN, JET_SEGMENTS, THIRD_CHANNELS, colormap_spectrogram, frame_signal, FrontendSpec,
    hamming_window, jet_colormap, log_magnitude_stft, make_frontend, masked_zscore, mel_filterbank,
    min_max_scale, multi_window_spectrogram, spectrogram, valid_frames)
from adarl_jax.data.corpora import (
    CORPORA, load_corpus, read_emodb, read_iemocap, read_ravdess, select_classes, stratified_subset)
from adarl_jax.data.manifest import BASE_COLUMNS, GENDER_COLUMN, check_domain_values, read_manifest
from adarl_jax.data.utterances import EMOTIONS, CorpusError, finish, listing, normalise_emotion, Utterance
from adarl_jax.data.dataset import compute_features, domain_labels, prepare_dataset, SegmentDataset
from adarl_jax.data.feature_cache import (
    CACHE_FORMAT, Batcher, build, cache_key, default_frontend, file_stamp, Frontend, load_cached,
    min_samples_for, stamps_key, valid_frame_count)
from adarl_jax.data.folds import Fold, loso_folds, parse_folds
from adarl_jax.data.augment import freq_warp, make_augment, mixup, spec_mask
from adarl_jax.data.reading import check_domains, corpus_dir, load_dataset, read_utterances, reads_same_data

__all__ = ["BASE_COLUMNS", "CACHE_FORMAT", "CORPORA", "EMOTIONS", "FLAT_SPAN", "GENDER_COLUMN", "JET_SEGMENTS",
           "SILENCE_DBFS", "THIRD_CHANNELS", "AudioError", "Batcher", "build", "cache_key",
           "check_domain_values", "check_domains", "colormap_spectrogram", "compute_features", "corpus_dir",
           "CorpusError", "default_frontend", "domain_labels", "file_stamp", "finish", "Fold", "frame_signal",
           "freq_warp", "Frontend", "FrontendSpec", "hamming_window", "iter_segments", "jet_colormap",
           "level_warning", "listing", "load_audio", "load_cached", "load_corpus", "load_dataset",
           "log_magnitude_stft", "loso_folds", "make_augment", "make_frontend", "masked_zscore",
           "mel_filterbank", "min_max_scale", "min_samples_for", "mixup", "multi_window_spectrogram",
           "normalise_emotion", "parse_folds", "prepare_dataset", "prepare_wave", "read_emodb", "read_iemocap",
           "read_manifest", "read_ravdess", "read_utterances", "reads_same_data", "segment", "segment_count",
           "SegmentDataset", "select_classes", "spec_mask", "spectrogram", "stamps_key", "stratified_subset",
           "Utterance", "valid_frame_count", "valid_frames"]
