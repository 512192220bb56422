"""The base config: every constant of the pipeline (front end, model shapes, loss weights,
schedule) as a field, set to the paper's reading. Each shipped config is this plus its own
overrides, in one file; `adarl_jax.config` loads, overrides and validates them.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """The paper's setting ('Reading the paper' in the README)."""
    c = ml_collections.ConfigDict()

    c.data = ml_collections.ConfigDict()
    c.data.corpus = "emodb"  # emodb | ravdess | iemocap | csv
    c.data.dir = ""  # corpus folder ('' = ../shared/data/<corpus> or --data)
    c.data.manifest = ""  # CSV manifest for corpus=csv (path, speaker, <domain_column>, emotion)
    c.data.classes = ("anger", "happiness", "sadness", "neutral")
    # the domain pathway's label: a column of the CSV manifest (corpus=csv only; the built-in
    # corpora's domain is gender), e.g. age_group, language, corpus
    c.data.domain_column = "gender"
    # what the domain label is: 'column' (data.domain_column's value), 'corpus' (the corpus an
    # utterance comes from: the main corpus's name or an extra's folder name; multi-corpus
    # training, `--extra-data`) or 'corpus_column' (both: '<corpus>/<value>'); data.genders
    # must list the values, e.g. ('emodb', 'ravdess-dev') or ('emodb/F', 'emodb/M', ...)
    c.data.domain = "column"
    # the domain values (of data.domain_column; the name is historical): domain label = index
    # here, and the domain head has one output per value
    c.data.genders = ("F", "M")
    c.data.sample_rate = 16000
    c.data.segment_s = 3.0
    c.data.min_tail_s = 1.0
    # a segment every segment_hop_s seconds (0 = segment_s: the paper's non-overlapping cut);
    # overlapping segments give more training inputs and more views to average per utterance
    c.data.segment_hop_s = 0.0
    # >0: cut each recording's leading and trailing silence first, from the first to the last
    # 25 ms frame within trim_db dB of its loudest frame (e.g. 40); 0 = keep it all
    c.data.trim_db = 0.0
    # <0: scale each recording (after the trim) to this RMS level in dBFS (e.g. -25), so that
    # how loud a corpus was recorded or normalised carries no label; 0 = as recorded
    c.data.level_dbfs = 0.0
    # emotions outside `classes`: drop them, or keep them as domain-only samples (their
    # gender trains the domain pathway; no emotion, centre or test term uses them)
    c.data.other_emotions = "drop"  # drop | domain_only
    # other corpora, each '[corpus:]PATH' (adarl_jax.data.corpus_sources): `extra` train in
    # every fold and are never tested (multi-corpus LOSO); `test` is tested whole, as one fold,
    # after training on this corpus and the extras (cross-corpus)
    c.data.extra = ()
    c.data.test = ""
    c.data.max_utterances = 0  # >0: keep only this many (stratified by speaker), for smoke runs

    c.frontend = ml_collections.ConfigDict()
    c.frontend.kind = "multi_window"  # multi_window | colormap
    c.frontend.hop_s = 0.010
    c.frontend.n_fft = 1600  # 10 Hz bins at 16 kHz
    c.frontend.n_bins = 400  # keep bins 0..n_bins-1 (0-4 kHz)
    c.frontend.n_frames = 300  # segment_s / hop_s
    c.frontend.windows_s = (0.020, 0.030, 0.040)  # multi_window: one channel per Hamming window
    # multi_window's third channel: 'window' (windows_s names 3 windows) | 'mean' (windows_s
    # names 2, e.g. the paper's 20 and 40 ms; the third is the mean of their log spectrograms)
    c.frontend.third_channel = "window"
    c.frontend.colormap_window_s = 0.020  # colormap: the one window drawn through 'jet'
    # linear: rfft bins 0..n_bins-1 (the paper: 0-4 kHz at n_fft 1600); mel: n_bins HTK-mel
    # bands from 0 Hz to fmax_hz, the power of the rfft bins summed through triangular filters
    c.frontend.scale = "linear"
    c.frontend.fmax_hz = 8000.0  # scale='mel' only
    # segment: z-score per segment and channel (the paper); speaker: standardise each
    # (frequency, channel) with the mean and std over all of the speaker's frames, test speaker
    # included (transductive: uses its unlabelled audio, never its labels); keeps loudness
    # utterance: the same with the statistics of the utterance itself (one recording is
    # all a user needs; a file's output never depends on other files)
    c.frontend.normalize = "segment"
    c.frontend.log_floor = 1e-6  # log(max(|X|, floor))
    c.frontend.zscore_eps = 1e-5

    c.model = ml_collections.ConfigDict()
    c.model.variant = "adarl"  # see adarl_jax.model.registry
    c.model.block_features = ((16, 16), (16, 16), (16, 16), (32, 32))  # one count per kernel
    c.model.block_pools = ((5, 5), (2, 2), (5, 5), (1, 1))  # (freq, time), stride = size
    # (freq, time) per parallel conv; an int k means (k, k). Table 1's legible fragments start
    # both kernels of every block with 3 ("Conv (3, 16, (3," twice): 3 in frequency, and the two
    # scales in time, for "the temporal uncertainty of speech" (Sec. 2.4). Square: (3, 5).
    c.model.kernel_sizes = ((3, 3), (3, 5))
    c.model.conv_bias = True
    c.model.hidden = 64  # FC width / deep-feature size
    c.model.attention_hidden = 4  # Eq. 4 bottleneck
    c.model.bn_momentum = 0.9
    c.model.grl_scale = 1.0  # domain_invariant: gradient reversal strength
    c.model.dtype = "float32"  # compute dtype; 'bfloat16' for accelerators (params stay f32)
    c.model.fused_bn_pool = True  # BatchNorm+ReLU+pool as one op with its own gradient (same function)
    # adarl: both pathways' block-1 convs as one conv (same function); slower on CPU (benchmarks/)
    c.model.shared_first_conv = False
    # block 1's convolutions: 'direct' (nn.Conv) or 'space_to_depth' (on 2 x 2 blocks of the
    # input, the same function; faster at quick's 80 x 60 on one CPU core, slower on two
    # threads and at the paper's input: benchmarks/README.md)
    c.model.first_convs = "direct"
    # the CFC's 64 FC(8, 1) (Eq. 2): per_channel = Xavier as 64 separate layers (fan-out 1);
    # joint = Xavier over the (8, 64) kernel as one layer (fan-out 64, ~2.8x smaller weights)
    c.model.channelwise_init = "per_channel"

    c.loss = ml_collections.ConfigDict()
    c.loss.domain_weight = 1.0  # gamma_1
    c.loss.emotion_weight = 1.0  # gamma_2
    c.loss.center_weight = 0.5  # gamma_3
    c.loss.label_smoothing = 0.0  # emotion targets (1 - s) one-hot + s / classes
    c.loss.class_weighting = "none"  # none | balanced (inverse class frequency, per fold)

    c.augment = ml_collections.ConfigDict()  # adarl_jax.data.augment; all off = the paper
    c.augment.freq_masks = 0
    c.augment.freq_mask_width = 0.1  # max width, fraction of the frequency bins
    c.augment.time_masks = 0
    c.augment.time_mask_width = 0.1  # max width, fraction of the frames
    c.augment.freq_warp = 0.0  # max relative stretch of the frequency axis (e.g. 0.1)
    c.augment.mixup_alpha = 0.0  # >0: mixup with lam ~ Beta(alpha, alpha) (e.g. 0.2)
    # frontend.normalize='speaker': every training segment also once standardised under each
    # listed mode, 'utterance' (by its recording alone) and/or 'train' (the training speakers'
    # pooled statistics), the statistics a user without the speaker's audio has (`predict`)
    c.augment.statistics_views = ()
    # every training recording also played at each of these speeds (e.g. (0.9, 1.1): resampled
    # waveforms, shorter/higher or longer/lower), each copy standardised by its own (speaker,
    # speed) statistics under frontend.normalize='speaker' (Ko et al., 2015); () = off
    c.augment.speeds = ()

    c.optim = ml_collections.ConfigDict()
    c.optim.optimizer = "sgd"  # sgd (coupled L2, the paper) | adamw (decoupled weight decay)
    c.optim.schedule = "step"  # step: x decay every epoch / decay_every_steps | cosine to 0
    c.optim.lr = 0.2
    c.optim.decay = 0.7
    c.optim.decay_every_steps = 0  # 0 = once per epoch (the paper); >0 = every N steps
    c.optim.momentum = 0.0
    c.optim.weight_decay = 4e-5
    c.optim.domain_weight_decay = -1.0  # the domain pathway's L2 (<0: weight_decay), to keep it from learning speakers
    # >0: the domain pathway (every parameter group named domain*) is first trained alone, on
    # the domain loss, for this many steps (its own decay over them); then the whole model
    # trains for the usual schedule with the domain pathway's lr scaled by domain_lr_scale
    # (0: frozen; the paper's premise of a reliable gender pathway, tested)
    c.optim.domain_pretrain_steps = 0
    c.optim.domain_lr_scale = 0.0
    c.optim.warmup_steps = 0  # >0: lr rises linearly from lr/N to lr over the first N steps
    c.optim.ema_decay = 0.0  # >0: evaluate a moving average of the weights (per step), not the last ones
    c.optim.batch_size = 32
    c.optim.epochs = 50
    c.optim.train_steps = 0  # >0: train ceil(train_steps / steps per epoch) epochs instead

    c.train = ml_collections.ConfigDict()
    c.train.seed = 0  # initialisation, batch order and augmentation
    c.train.split_seed = 0  # which training speakers become validation speakers (fixed across seeds)
    c.train.keep_checkpoints = 2
    c.train.checkpoint_every_steps = 0  # 0: a checkpoint every epoch; N: when N steps have passed
    c.train.selection = "last"  # last | val (validation speakers drawn from training speakers)
    # >0 with selection 'val' (ignored with 'last'): a fold stops once its best validation epoch
    # lies this fraction of the schedule's steps behind (the schedule unchanged: every epoch
    # before the stop is the full run's; a domain pretraining's epochs start no count); 0: it
    # trains every epoch
    c.train.patience_fraction = 0.0
    c.train.val_speakers_per_gender = 1
    # none | class | gender | class_gender: draw each epoch's samples with probability
    # inversely proportional to their group's size (with replacement), e.g. balanced batches
    c.train.balance = "none"
    c.train.eval_batch_size = 32
    c.train.progress = True
    # a fold whose training speakers have no utterance of a class is refused (its model never
    # sees the class, and its UA counts a recall it cannot have); True: train it, with a warning
    c.train.allow_missing_class = False
    # scan: each epoch is one compiled lax.scan over the training set held on the devices;
    # step: one call a step, the batch copied from the host (for sets that do not fit);
    # auto: step on CPU (XLA:CPU runs the scanned step ~5x slower than the same step called
    # from Python, measured on the quick config), scan on GPU/TPU
    c.train.loop = "auto"

    c.eval = ml_collections.ConfigDict()  # adarl_jax.train.test_statistics
    # frontend.normalize='speaker': after the test, the fold's model labels the test speaker
    # again under the statistics a user has: 'utterance', 'enrol:K', 'train' (reported only)
    c.eval.test_statistics = ("utterance", "enrol:3", "enrol:10", "train")
    c.eval.enrol_draws = 5  # enrol:K: random draws of the K utterances, each scored

    c.baselines = ml_collections.ConfigDict()  # openSMILE + linear SVM (adarl_jax.baselines.opensmile)
    # False: fit on the fold's training speakers, as the CNN trains (C chosen on the validation
    # speakers); True: refit on training + validation speakers (the CNN has no such option yet)
    c.baselines.refit_on_val = False
    # the functionals' normalisation, each fitted as a baseline of its own: global (the
    # scaler of the training speakers only; opensmile_<set>_svm) and speaker (each speaker's
    # functionals z-scored with that speaker's own mean and std first, the transductive rule of
    # frontend.normalize='speaker'; opensmile_<set>_spk_svm)
    c.baselines.normalize = ("global", "speaker")

    c.log = ml_collections.ConfigDict()
    # TensorBoard event files per fold (<fold>/tensorboard/, one scalar per metric per epoch);
    # needs the optional tensorboardX (pip install 'adarl-jax[tensorboard]')
    c.log.tensorboard = False
    return c


# The pieces of the measured recipes, named once; each shipped config applies the ones it uses
# (so it reads alone in its own file plus this one).


def square_network(config) -> None:
    """The network the recipes were measured with, not the base's paper reading: square 3x3
    and 5x5 kernels, the channel-wise FC initialised as one (8, 64) layer."""
    config.model.kernel_sizes = ((3, 3), (5, 5))
    config.model.channelwise_init = "joint"


def sgd_training(config) -> None:
    """The earlier recipe's training (`quick_sgd.py`): SGD lr 0.05 without momentum, 15 epochs,
    x0.7 every 150 steps, the epoch chosen on validation speakers (one per gender), batches
    balanced over emotion x gender."""
    config.optim.lr = 0.05
    config.optim.epochs = 15
    config.optim.decay_every_steps = 150
    validation_selection(config)


def adamw_training(config) -> None:
    """The recipe's training (`quick.py`, chosen by nested selection): AdamW (lr 1e-3,
    decoupled weight decay 1e-2), cosine decay to 0 over 600 steps whatever the corpus size
    (twice the 300 it was chosen with: that won three seeds of both corpora's validation
    speakers, RESULTS.md), the epoch chosen on validation speakers (a fold stopped once that
    epoch is 30% of the schedule behind), batches balanced over emotion x gender."""
    config.optim.optimizer = "adamw"
    config.optim.schedule = "cosine"
    config.optim.lr = 0.001
    config.optim.weight_decay = 0.01
    config.optim.train_steps = 600
    config.optim.epochs = 15
    config.optim.decay_every_steps = 150
    validation_selection(config)
    config.train.checkpoint_every_steps = 100  # same model (tested); less time writing checkpoints
    # stop a fold once its best validation epoch is 30% of the schedule behind: the selected
    # model changes in 6 of 66 folds and mean fold validation UA by -0.001 / -0.002 (EmoDB /
    # ravdess-dev, 3 seeds), for about 35% fewer steps (rule and figures: RESULTS.md)
    config.train.patience_fraction = 0.3


def validation_selection(config) -> None:
    """The epoch chosen by UA on validation speakers (one per gender, drawn from each fold's
    training speakers), batches balanced over emotion x gender."""
    config.train.selection = "val"
    config.train.val_speakers_per_gender = 1
    config.train.balance = "class_gender"
