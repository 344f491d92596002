"""Train an experiment: holdout or K-fold, with Keras callbacks for resume and logging.

Its outputs go to the experiment's folder, each written atomically through
:class:`digit_recognizer.experiment.Experiment`, which names them: config.json
first, then per member the model, its per-epoch log and its validation
predictions, then every validation prediction together, and metrics.json last
(its presence means "finished").

A killed run resumes: finished members are skipped, and the member in progress
restarts from its last completed epoch (``keras.callbacks.BackupAndRestore``, its
files written atomically; a backup that cannot be loaded is discarded with a
warning and that member trains from the start).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from digit_recognizer import split
from digit_recognizer.atomic import atomic_path, write_json, write_npz, write_text
from digit_recognizer.compat import BACKUP_METADATA, BACKUP_WEIGHTS, atomic_backup_callback
from digit_recognizer.config import Competition, ExperimentConfig, Paths
from digit_recognizer.data import Dataset, class_warnings, load_train
from digit_recognizer.errors import UserError, quote
from digit_recognizer.experiment import FULL_MEMBER, Experiment
from digit_recognizer.modeling.inference import ensemble_probabilities, load_model_file, predict_probabilities

__all__ = ["BACKUP_METADATA", "BACKUP_WEIGHTS", "FULL_MEMBER", "train_experiment", "train_member"]


@dataclass(frozen=True)
class TrainResult:
    experiment_dir: Path
    metrics: dict


def subset_rows(labels: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """A stratified subset of row indices (all rows when ``max_rows`` is 0 or too large)."""
    if max_rows < 0:
        raise UserError(f"--max-rows must be 0 (all rows) or positive, got {max_rows}")
    if not max_rows or max_rows >= len(labels):
        return np.arange(len(labels))
    from sklearn.model_selection import train_test_split

    try:
        rows, _ = train_test_split(np.arange(len(labels)), train_size=max_rows, stratify=labels, random_state=seed)
    except ValueError as error:  # fewer rows than labels
        raise UserError(
            f"--max-rows {max_rows}: cannot take a stratified subset of {len(labels)} rows ({error})"
        ) from None
    return np.sort(rows)


def make_dataset(
    images,
    labels,
    batch_size: int,
    num_classes: int,
    shuffle: bool = False,
    augment: bool = False,
    seed: int = 0,
    elastic: float = 0.0,
    photo_augment: float = 0.0,
    photo_negatives: float = 0.0,
):
    """uint8 images -> batched float32 [0, 1] tf.data pipeline with one-hot labels.

    Augmentation (small rotation, zoom and shift, zero fill, never flips) runs here
    on whole batches, off the model graph, so the saved model is the plain classifier.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((images, labels) if labels is not None else images)
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)

    def to_float(x, y=None):
        x = tf.cast(x, tf.float32) / 255.0
        return x if y is None else (x, tf.one_hot(y, num_classes))

    dataset = dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if augment:
        from digit_recognizer.modeling.augment import build_augmenter

        augmenter = build_augmenter(seed, elastic=elastic, photo=photo_augment)
        dataset = dataset.map(lambda x, y: (augmenter(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    if photo_negatives and labels is not None:
        from digit_recognizer.modeling.augment import with_non_digits

        dataset = dataset.map(
            lambda x, y: with_non_digits(x, y, photo_negatives, seed + 7), num_parallel_calls=tf.data.AUTOTUNE
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


def choose_strategy(devices: list[str] | None = None):
    """MirroredStrategy when more than one GPU is visible (or ``devices`` names several), else the default."""
    import tensorflow as tf

    if devices and len(devices) > 1:
        return tf.distribute.MirroredStrategy(devices=devices)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy(devices=[gpu.name for gpu in gpus])
    return tf.distribute.get_strategy()


def resolve_precision(precision: str) -> str:
    """ "auto": mixed_float16 on a GPU, mixed_bfloat16 on a CPU with native bf16 (AVX-512 BF16 or AMX), else float32."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="ignore")
    except OSError:
        flags = ""
    return "mixed_bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def ema_momentum(total_steps: int) -> float:
    """Momentum of the weights' moving average: 0.999, or less for short runs, so that the initial weights'
    share (momentum ** total_steps, about e^-8) is negligible; a 6-epoch run with 0.999 kept 17% of them."""
    return max(0.0, min(0.999, 1.0 - 8.0 / max(1, total_steps)))


def compile_model(model, config: ExperimentConfig, steps_per_epoch: int):
    import keras

    if config.schedule == "cosine":
        total_steps = max(1, config.epochs * steps_per_epoch)
        warmup_steps = min(steps_per_epoch, total_steps // 5)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate / 10,
            decay_steps=max(1, total_steps - warmup_steps),
            alpha=0.0,
            warmup_target=config.learning_rate,
            warmup_steps=warmup_steps,
        )
    elif config.schedule == "constant":
        learning_rate = config.learning_rate
    else:
        raise ValueError(f"unknown schedule '{config.schedule}'")
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=learning_rate, use_ema=config.ema, ema_momentum=ema_momentum(config.epochs * steps_per_epoch)
        ),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
    return model


class _Throughput:
    """Wall-clock seconds spent in ``fit`` and images seen."""

    def __init__(self):
        self.seconds = 0.0
        self.images = 0


MEMBER_SEED_OFFSETS = {"p": 1000, "b": 2000}  # a member name's prefix: p = second round, b = partner


def member_seed(seed: int, member) -> int:
    """The random seed of one member: the experiment's seed for the full-data model, + k for fold k, + 1000 + k for
    fold k's second-round (pseudo-label) model, + 2000 + k for fold k's partner (``--partner``)."""
    if member == FULL_MEMBER:
        return seed
    text = str(member)
    if text[:1] in MEMBER_SEED_OFFSETS:
        return seed + MEMBER_SEED_OFFSETS[text[0]] + int(text[1:])
    return seed + int(text)


def initial_weights(model, path: Path) -> None:
    """Give ``model`` the weights of the saved model at ``path`` (same architecture), weight by weight in order rather
    than by layer name, so that a first round saved with Keras' own BatchNormalization (before
    :class:`~digit_recognizer.modeling.models.FusedBatchNormalization`) still starts a fine-tuned second round."""
    saved = load_model_file(path).get_weights()
    if [tuple(weight.shape) for weight in saved] != [tuple(weight.shape) for weight in model.weights]:
        raise UserError(
            f"{path}: its weights do not fit a new {model.name} model; delete the experiment and train it again"
        )
    model.set_weights(saved)


def train_member(
    config: ExperimentConfig,
    competition: Competition,
    experiment: Experiment,
    member,
    train_images,
    train_labels,
    valid_images=None,
    valid_labels=None,
    verbose: int = 1,
    devices: list[str] | None = None,
    throughput: _Throughput | None = None,
    start_from: Path | None = None,
):
    """Train one model (a fold, the holdout model or the full-data model) with resume support; save it atomically.

    ``start_from``, a saved model of the same architecture, gives the initial weights (fine-tuning) instead of a
    random initialisation."""
    from digit_recognizer.modeling.keras_import import import_keras_quietly

    import_keras_quietly()
    import keras

    keras.utils.set_random_seed(member_seed(config.seed, member))
    strategy = choose_strategy(devices)
    batch_size = config.batch_size
    steps_per_epoch = math.ceil(len(train_images) / batch_size)
    train_data = make_dataset(
        train_images,
        train_labels,
        batch_size,
        competition.num_classes,
        shuffle=True,
        augment=config.augment,
        seed=config.seed,
        elastic=config.elastic,
        photo_augment=config.photo_augment,
        photo_negatives=config.photo_negatives,
    )
    valid_data = None
    if valid_images is not None:
        valid_data = make_dataset(valid_images, valid_labels, 512, competition.num_classes)
    keras.mixed_precision.set_global_policy(
        resolve_precision(config.precision)
    )  # after the input pipeline: augmentation stays float32

    with strategy.scope():
        from digit_recognizer.modeling.models import build_model

        model = build_model(config.architecture, competition.image_shape, competition.num_classes)
        if start_from is not None:
            initial_weights(model, start_from)
        compile_model(model, config, steps_per_epoch)

    backup_dir = experiment.backup_dir(member)
    history_file = experiment.history_file(member)
    with strategy.scope():
        completed = check_backup(model, backup_dir, config.epochs)
    if completed is None:  # the backup was unusable and is deleted: train this member afresh, same initialisation
        return train_member(
            config,
            competition,
            experiment,
            member,
            train_images,
            train_labels,
            valid_images,
            valid_labels,
            verbose=verbose,
            devices=devices,
            throughput=throughput,
            start_from=start_from,
        )
    trim_history(history_file, completed)
    # The log first, the backup last: a kill between the two logs an epoch the backup lacks, and trim_history
    # drops that row on resume, so the log ends with each epoch exactly once. Early stopping saves its best
    # weights before the backup commits the epoch, so a resumed run finds the weights of every logged best epoch.
    callbacks = [keras.callbacks.CSVLogger(str(history_file), append=True)]
    if config.patience and valid_data is not None:
        callbacks.append(resumable_early_stopping(backup_dir, history_file, config.patience))
    # Kept until the member's outputs are saved (train_experiment deletes it), so a kill in between resumes at the end.
    callbacks.append(atomic_backup_callback(backup_dir))
    started = time.perf_counter()
    history = model.fit(
        train_data,
        validation_data=valid_data,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,
    )  # tf.data shuffles already; Keras would warn that it ignores shuffle=True
    if throughput is not None:
        throughput.seconds += time.perf_counter() - started
        throughput.images += len(train_images) * len(history.epoch)
    keras.mixed_precision.set_global_policy("float32")
    with atomic_path(experiment.member_file(member)) as tmp:
        model.save(tmp)
    return model


def best_weights_file(backup_dir: Path, epoch: int) -> Path:
    return Path(backup_dir) / f"best-{epoch}.weights.h5"


def logged_scores(history_file: Path, monitor: str) -> list[float]:
    """The ``monitor`` column of a per-epoch log (CSVLogger), one value an epoch; [] without a usable log."""
    import pandas as pd

    try:
        return [float(value) for value in pd.read_csv(history_file)[monitor]]
    except (OSError, ValueError, KeyError, pd.errors.EmptyDataError):
        return []


def resumable_early_stopping(backup_dir: Path, history_file: Path, patience: int, monitor: str = "val_accuracy"):
    """keras.callbacks.EarlyStopping (best weights restored) that carries on across a resume as if never stopped:
    the best score and the epochs waited since are read back from the per-epoch log, and the best epoch's weights
    from ``best-<epoch>.weights.h5`` in the backup folder, which it writes whenever the score improves."""
    import keras

    from digit_recognizer.compat import early_stopping_best_epoch, restore_early_stopping

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            scores = logged_scores(history_file, monitor)
            if not scores:
                return
            best_epoch = int(np.argmax(scores))  # the first maximum: EarlyStopping counts only strict improvements
            best_file = best_weights_file(backup_dir, best_epoch)
            if not best_file.exists():
                return  # a backup from before this callback: start counting afresh
            latest = self.model.get_weights()
            self.model.load_weights(best_file)
            best_weights = self.model.get_weights()
            self.model.set_weights(latest)
            restore_early_stopping(self, scores[best_epoch], best_epoch, len(scores) - 1 - best_epoch, best_weights)

        def on_epoch_end(self, epoch, logs=None):
            previous_best = early_stopping_best_epoch(self)
            super().on_epoch_end(epoch, logs)
            if early_stopping_best_epoch(self) != epoch:
                return
            with atomic_path(best_weights_file(backup_dir, epoch), suffix=".weights.h5") as tmp:
                self.model.save_weights(str(tmp))
            # Keep the previous best too: until the backup commits this epoch, a resume goes back to that one.
            kept = {best_weights_file(backup_dir, epoch), best_weights_file(backup_dir, previous_best)}
            for stale in set(Path(backup_dir).glob("best-*.weights.h5")) - kept:
                stale.unlink(missing_ok=True)

    return ResumableEarlyStopping(monitor=monitor, mode="max", patience=patience, restore_best_weights=True)


def check_backup(model, backup_dir: Path, epochs: int) -> int | None:
    """Completed epochs recorded in a member's backup: 0 without one, None (after deleting it, with a
    warning) when it cannot be loaded, e.g. written by an older version or damaged by hand."""
    backup_dir = Path(backup_dir)
    if not backup_dir.exists():
        return 0
    try:
        epoch = json.loads((backup_dir / BACKUP_METADATA).read_text(encoding="utf-8"))["epoch"]
        if not isinstance(epoch, int) or not 0 <= epoch <= epochs:
            raise ValueError(f"epoch {epoch!r} is not in 0-{epochs}")
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(backup_dir / BACKUP_WEIGHTS)  # what BackupAndRestore does when fit starts
    except Exception as error:  # any damage: h5py, JSON, Keras and OS errors all mean "start afresh"
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        print(
            f"warning: the backup in {backup_dir} cannot be resumed from ({reason}); training this model from the start",
            flush=True,
        )
        shutil.rmtree(backup_dir, ignore_errors=True)
        return None
    return epoch


def trim_history(history_file: Path, completed: int) -> None:
    """Keep the per-epoch log's rows for the ``completed`` epochs a backup holds (none: delete the log)."""
    history_file = Path(history_file)
    if not history_file.exists():
        return
    lines = history_file.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    if completed == 0 or not lines or not lines[0].startswith("epoch") or not lines[0].endswith("\n"):
        history_file.unlink()
        return
    width = len(lines[0].rstrip("\r\n").split(","))
    kept = [
        line
        for line in lines[1:]
        if line.endswith("\n")
        and len(fields := line.rstrip("\r\n").split(",")) == width
        and fields[0].isdigit()
        and int(fields[0]) < completed
    ]
    if len(kept) != len(lines) - 1:
        write_text(history_file, "".join([lines[0], *kept]))


def prepare_experiment(
    paths: Paths, config: ExperimentConfig, fingerprint: str, split_file: Path, write: bool = True
) -> Experiment:
    """Create models/<name>/ with config.json, or check an existing one is the same run (then it resumes).
    ``write=False`` only checks (a refused run must not have written anything first)."""
    experiment = Experiment(paths, config.name)
    if experiment.is_ensemble:
        raise UserError(f"'{config.name}' is an ensemble ({experiment.folder}); choose another --name")
    if experiment.folder.exists() and not experiment.folder.is_dir():
        raise UserError(f"{experiment.folder}: is a file, not an experiment folder; choose another --name")
    split_text = str(split_file.relative_to(paths.root)) if split_file.is_relative_to(paths.root) else str(split_file)
    record = {"config": config.to_dict(), "data_fingerprint": fingerprint, "split_file": split_text}
    if experiment.is_started:
        if experiment.same_run(record["config"], fingerprint) is False:
            raise UserError(
                f"experiment '{config.name}' already exists with other settings or data ({experiment.config_file}); choose another --name"
            )
        if experiment.is_finished:
            raise UserError(
                f"experiment '{config.name}' is already trained ({experiment.folder}); choose another --name or run `digit-recognizer predict --experiment {config.name}`"
            )
    if write:
        try:
            write_json(experiment.config_file, record)
        except OSError as error:
            raise UserError(
                f"{experiment.folder}: cannot write the experiment ({quote(error)}); check the folder's permissions and free space"
            ) from None
    return experiment


def train_round(
    config: ExperimentConfig,
    competition: Competition,
    experiment: Experiment,
    members: list,
    images,
    labels,
    rows,
    folds,
    extra=None,
    start_from=None,
    kind: str = "",
    verbose: int = 1,
    devices=None,
    throughput=None,
    log=print,
) -> tuple[np.ndarray, list[float]]:
    """Train (or, when saved, skip) one member per fold: member ``members[k]`` trains on the rows outside fold k (plus
    ``extra(k)``'s images and labels, if given; from the weights of the model file ``start_from(k)``, if given) and
    is validated on fold k. ``kind`` names the round in the progress lines (" (second round)", " (partner)").
    Return the out-of-fold probabilities of every row (zeros outside the validated folds) and each fold's accuracy."""
    oof_probabilities = np.zeros((len(labels), competition.num_classes), dtype=np.float32)
    accuracies = []
    for fold, member in enumerate(members):
        valid_mask = folds == fold
        valid_file = experiment.valid_file(member)
        counted = f"member {fold + 1}/{len(members)}{kind}"
        if experiment.member_file(member).exists() and valid_file.exists():
            log(f"{counted}: already trained, skipping")
        else:
            train_images, train_labels = images[~valid_mask], labels[~valid_mask]
            if extra is not None:
                extra_images, extra_labels = extra(fold)
                train_images = np.concatenate([train_images, extra_images])
                train_labels = np.concatenate([train_labels, extra_labels])
            rows_text = f"{int((~valid_mask).sum())} rows"
            if extra is not None:
                rows_text += f" + {len(train_labels) - int((~valid_mask).sum())} pseudo-labelled test images"
            if len(members) > 1:
                log(
                    f"fold {fold + 1}/{len(members)}{kind}: training on {rows_text}, "
                    f"validating on {int(valid_mask.sum())}"
                )
            else:
                log(
                    f"training {config.architecture} on {rows_text}, validating on {int(valid_mask.sum())} "
                    f"(holdout {config.holdout:g}){kind}"
                )
            model = train_member(
                config,
                competition,
                experiment,
                member,
                train_images,
                train_labels,
                images[valid_mask],
                labels[valid_mask],
                verbose=verbose,
                devices=devices,
                throughput=throughput,
                start_from=None if start_from is None else start_from(fold),
            )
            # scored as the experiment predicts: with test-time augmentation when its recipe has it (--tta)
            probabilities = ensemble_probabilities([model], images[valid_mask], tta=config.tta)
            write_npz(valid_file, rows=rows[valid_mask], labels=labels[valid_mask], probabilities=probabilities)
            shutil.rmtree(experiment.backup_dir(member), ignore_errors=True)
        member_probabilities = experiment.read_member_validation(member).probabilities
        oof_probabilities[valid_mask] = member_probabilities
        accuracy = float((member_probabilities.argmax(1) == labels[valid_mask]).mean())
        accuracies.append(accuracy)
        log(f"{counted}: validation accuracy {accuracy:.5f}")
    return oof_probabilities, accuracies


def unsmoothed(probabilities: np.ndarray, label_smoothing: float) -> np.ndarray:
    """A label-smoothed model's probabilities on the scale of an unsmoothed one.

    Trained towards ``(1 - s) * onehot + s / K``, a model's top probability cannot pass ``1 - s + s / K`` (0.91 with
    s = 0.1), so a threshold like 0.995 would select nothing. Inverting the smoothing gives back the probability
    the threshold is meant for."""
    if not label_smoothing:
        return probabilities
    classes = probabilities.shape[-1]
    return np.clip((probabilities - label_smoothing / classes) / (1 - label_smoothing), 0.0, 1.0)


FINE_TUNE_LEARNING_RATE = 1 / 3  # the second round's peak learning rate, as a share of the first round's


def second_round_config(config: ExperimentConfig) -> ExperimentConfig:
    """How the pseudo-label round trains: like the first round, or, with ``pseudo_epochs``, fine-tuned for that
    many epochs at a third of the learning rate (a short warm restart from the first round's weights)."""
    if not config.pseudo_epochs:
        return config
    return replace(config, epochs=config.pseudo_epochs, learning_rate=config.learning_rate * FINE_TUNE_LEARNING_RATE)


PSEUDO_RULE = "unsmoothed-v1"  # how the confidence of a saved pseudo-label file was measured


def pseudo_labels(
    config: ExperimentConfig, competition: Competition, experiment: Experiment, fold: int, test, log=print
) -> tuple[np.ndarray, np.ndarray]:
    """Test images the first-round model of ``fold`` is sure of (top probability >= ``config.pseudo_label``, with the
    label smoothing undone: :func:`unsmoothed`), labelled with that model's own predictions; saved to (and, on a
    resume, read from) the experiment's pseudo-label file.

    Only that fold's model labels them: it never saw the fold's rows, so the second round's validation on the fold
    stays honest. No label from outside train.csv is read: test.csv has none, and the answer key of the offline
    sample is never opened."""
    path = experiment.pseudo_file(fold)
    if path.exists():
        with np.load(path, allow_pickle=False) as saved:
            if str(saved["test_fingerprint"]) == test.fingerprint and str(saved.get("rule", "")) == PSEUDO_RULE:
                return test.images[saved["test_rows"]], saved["labels"]
    model = load_model_file(experiment.member_file(fold))
    probabilities = unsmoothed(predict_probabilities(model, test.images), config.label_smoothing)
    keep = np.flatnonzero(probabilities.max(axis=1) >= config.pseudo_label)
    labels = probabilities[keep].argmax(axis=1).astype(np.int64)
    if not len(keep):
        log(
            f"warning: fold {fold + 1}'s model is sure (probability >= {config.pseudo_label:g}) of none of the "
            f"{len(test.images)} test images: its second round learns from train.csv alone; a lower --pseudo-label "
            "gives it pseudo-labels"
        )
    write_npz(
        path,
        test_rows=keep,
        labels=labels,
        confidence=probabilities[keep].max(axis=1),
        test_fingerprint=np.array(test.fingerprint),
        rule=np.array(PSEUDO_RULE),
    )
    return test.images[keep], labels


def train_string_reader(
    config: ExperimentConfig, experiment: Experiment, images, labels, folds, verbose: int = 1, log=print
) -> float | None:
    """The experiment's string reader (``--reader-strings``), trained on the rows its first model trained on (all
    of them with ``--full-train``) and scored on synthetic strings from that model's validation rows; skipped when
    it is already saved (a resumed run). Returns that score (None when skipped or nothing was held out)."""
    from digit_recognizer.modeling.reader import train_reader

    if experiment.reader_file.exists():
        log("string reader: already trained, skipping")
        return None
    train_rows = np.ones(len(labels), bool) if config.full_train else folds != 0
    valid_rows = folds == 0
    return train_reader(
        images[train_rows],
        labels[train_rows],
        experiment.reader_file,
        config.reader_strings,
        config.seed,
        valid_images=images[valid_rows] if valid_rows.any() else None,
        valid_labels=labels[valid_rows] if valid_rows.any() else None,
        precision=resolve_precision(config.precision),
        verbose=verbose,
        log=log,
    )


def train_experiment(
    config: ExperimentConfig,
    paths: Paths,
    competition: Competition,
    verbose: int = 1,
    devices: list[str] | None = None,
    dataset: Dataset | None = None,
    log=print,
) -> TrainResult:
    """Train every member of an experiment, then score the holdout / out-of-fold predictions."""
    dataset = dataset if dataset is not None else load_train(paths, competition)
    for warning in class_warnings(dataset.labels, competition):
        log(f"warning: {warning}")
    rows = subset_rows(dataset.labels, config.max_rows, config.seed)
    images, labels = dataset.images[rows], dataset.labels[rows]
    fingerprint = dataset.fingerprint if len(rows) == len(dataset) else f"{dataset.fingerprint}-n{len(rows)}"
    if config.cv:
        split_file = split.folds_file(paths.splits, config.cv, config.seed, fingerprint)
    else:
        split_file = split.holdout_file(paths.splits, config.holdout, config.seed, fingerprint)
    prepare_experiment(paths, config, fingerprint, split_file, write=False)  # refuse before the split file is written
    if config.cv:
        folds = split.kfold_folds(paths.splits, labels, config.cv, config.seed, fingerprint)
    else:
        folds = split.holdout_folds(paths.splits, labels, config.holdout, config.seed, fingerprint)
    experiment = prepare_experiment(paths, config, fingerprint, split_file)
    throughput = _Throughput()
    started = time.perf_counter()
    validated = folds >= 0
    members = list(range(config.num_members))
    common = dict(verbose=verbose, devices=devices, throughput=throughput, log=log)
    oof_probabilities, fold_accuracies = train_round(
        config, competition, experiment, members, images, labels, rows, folds, **common
    )
    first_round_score = None
    if config.pseudo_label:
        from digit_recognizer.data import load_test

        first_round_score = float((oof_probabilities[validated].argmax(1) == labels[validated]).mean())
        log(
            f"first round: {'out-of-fold' if config.cv else 'holdout'} accuracy {first_round_score:.5f}; second round with "
            f"test images the first round is sure of (probability >= {config.pseudo_label:g}), labelled by its own predictions"
            + (
                f", fine-tuned from each fold's first-round model for {config.pseudo_epochs} epochs"
                if config.pseudo_epochs
                else ""
            )
        )
        test = load_test(paths, competition)
        first_members = members
        members = [f"p{member}" for member in members]
        oof_probabilities, fold_accuracies = train_round(
            second_round_config(config),
            competition,
            experiment,
            members,
            images,
            labels,
            rows,
            folds,
            extra=lambda fold: pseudo_labels(config, competition, experiment, fold, test, log=log),
            start_from=(lambda fold: experiment.member_file(first_members[fold])) if config.pseudo_epochs else None,
            kind=" (second round)",
            **common,
        )
    if config.partner != "none":
        partners = [f"b{member}" for member in members]
        partner_probabilities, _ = train_round(
            replace(config, architecture=config.partner),
            competition,
            experiment,
            partners,
            images,
            labels,
            rows,
            folds,
            kind=f" (partner {config.partner})",
            **common,
        )
        # each fold is scored as `predict` uses the experiment: the average of its model and the partner
        oof_probabilities = (oof_probabilities + partner_probabilities) / 2
        fold_accuracies = [
            float((oof_probabilities[folds == fold].argmax(1) == labels[folds == fold]).mean())
            for fold in range(len(members))
        ]
        log(
            f"{'out-of-fold' if config.cv else 'holdout'} accuracy of each model averaged with its partner: "
            + ", ".join(f"{accuracy:.5f}" for accuracy in fold_accuracies)
        )
        members = members + partners
    write_npz(
        experiment.oof_file,
        rows=rows[validated],
        labels=labels[validated],
        probabilities=oof_probabilities[validated],
        folds=folds[validated],
    )
    score = float((oof_probabilities[validated].argmax(1) == labels[validated]).mean())
    if config.full_train:
        if experiment.member_file(FULL_MEMBER).exists():
            log("full-data model: already trained, skipping")
        else:
            log(f"retraining on all {len(labels)} rows for {config.epochs} epochs (--full-train)")
            train_member(
                config,
                competition,
                experiment,
                FULL_MEMBER,
                images,
                labels,
                verbose=verbose,
                devices=devices,
                throughput=throughput,
            )
            shutil.rmtree(experiment.backup_dir(FULL_MEMBER), ignore_errors=True)
    reader_accuracy = None
    if config.reader_strings:
        reader_accuracy = train_string_reader(config, experiment, images, labels, folds, verbose=verbose, log=log)
    elapsed = time.perf_counter() - started
    metrics = {
        "experiment": config.name,
        "preset": config.preset,
        "architecture": config.architecture,
        "partner": config.partner,
        "seed": config.seed,
        "validation": f"oof-{config.cv}fold" if config.cv else f"holdout-{config.holdout:g}",
        "score": score,
        "holdout_accuracy": None if config.cv else score,
        "oof_accuracy": score if config.cv else None,
        "fold_accuracies": fold_accuracies if config.cv else None,
        "first_round_score": first_round_score,
        "reader_string_accuracy": reader_accuracy,
        "validation_rows": int(validated.sum()),
        "train_rows": int(len(labels)),
        "train_seconds": round(elapsed, 2),
        "fit_seconds": round(throughput.seconds, 2),
        "images_per_second": round(throughput.images / throughput.seconds, 1) if throughput.seconds else None,
        "members": [experiment.member_file(FULL_MEMBER).name]
        if config.full_train
        else [experiment.member_file(m).name for m in members],
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(experiment.metrics_file, metrics)
    return TrainResult(experiment.folder, metrics)
