"""What a model is compiled with: the optimizer of `train.*`, the loss
(cross-entropy, label smoothing included; mean squared error for a
regression) and the metrics, the same in training and in every
evaluation."""

import keras

from tuning.trial.config import TrainConfig

# One sigmoid unit: class 1 when its probability is above this, as Keras'
# `binary_accuracy` decides.
THRESHOLD = 0.5

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
}


def make_optimizer(train: TrainConfig, learning_rate: float, *,
                   steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer of `train`: its schedule (a cosine decays over all
    `train.epochs`), decoupled weight decay (biases exempt; adam becomes
    AdamW) and gradient clipping."""
    rate = learning_rate
    if train.lr_schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=max(1, train.epochs * steps_per_epoch))
    options = {"learning_rate": rate}
    if train.clipnorm:
        options["clipnorm"] = train.clipnorm
    optimizer_class = OPTIMIZERS[train.optimizer]
    if train.weight_decay:
        options["weight_decay"] = train.weight_decay
        if train.optimizer == "adam":
            optimizer_class = keras.optimizers.AdamW
    optimizer = optimizer_class(**options)
    if train.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=["bias"])
    return optimizer


# Registered apart from what exported models hold (`rnntune>`, which
# `import rnntune` registers): only a run's training state holds it.
@keras.saving.register_keras_serializable(package="rnntune_training")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with label smoothing from integer labels
    (Keras' sparse loss takes no smoothing). Registered, so a training
    state saved with it (`tuning.trial.state`) loads back."""

    def __init__(self, num_classes: int, label_smoothing: float, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "label_smoothing": self.label_smoothing}

    def call(self, y_true, y_pred):
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        return keras.losses.categorical_crossentropy(
            keras.ops.one_hot(labels, self.num_classes), y_pred,
            label_smoothing=self.label_smoothing)


@keras.saving.register_keras_serializable(package="rnntune_training")
class BalancedAccuracy(keras.metrics.Metric):
    """The mean of the per-class recalls (classes absent from the labels
    left out): accuracy that a majority class cannot inflate. Counts are
    summed over batches and replicas, so it is exact, not a mean of
    per-batch figures."""

    def __init__(self, num_classes: int, name: str = "balanced_accuracy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.hits = self.add_variable(shape=(num_classes,), name="hits",
                                      initializer="zeros")
        self.counts = self.add_variable(shape=(num_classes,), name="counts",
                                        initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        ops = keras.ops
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        if y_pred.shape[-1] == 1:
            predicted = ops.cast(ops.reshape(y_pred, (-1,)) > THRESHOLD,
                                 "int32")
        else:
            predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        true = ops.one_hot(labels, self.num_classes, dtype=self.dtype)
        right = ops.cast(ops.equal(predicted, labels), self.dtype)
        self.counts.assign_add(ops.sum(true, axis=0))
        self.hits.assign_add(ops.sum(true * right[:, None], axis=0))

    def result(self):
        ops = keras.ops
        seen = ops.cast(self.counts > 0, self.dtype)
        recalls = self.hits / ops.maximum(self.counts, 1.0)
        return ops.sum(recalls * seen) / ops.maximum(ops.sum(seen), 1.0)

    def reset_state(self):
        for variable in (self.hits, self.counts):
            variable.assign(keras.ops.zeros_like(variable))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def make_loss(num_classes: int, label_smoothing: float
              ) -> keras.losses.Loss:
    """Cross-entropy for `num_classes` (a sigmoid unit for 2); mean
    squared error for 0 (a regression)."""
    if num_classes == 0:
        return keras.losses.MeanSquaredError()
    if num_classes == 2:
        return keras.losses.BinaryCrossentropy(
            label_smoothing=label_smoothing)
    if label_smoothing:
        return SparseSmoothedCrossentropy(num_classes, label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def compile_model(model: keras.Model, *, num_classes: int,
                  label_smoothing: float,
                  optimizer: keras.optimizers.Optimizer | None = None
                  ) -> None:
    """Compiles `model` with the run's loss and metrics (and `optimizer`,
    for training; an exported model is compiled without one, to be
    scored): accuracy and balanced accuracy, or for a regression
    (`num_classes` 0) mean absolute and root mean squared error (`mae`,
    `rmse`)."""
    model.compile(optimizer=optimizer,
                  loss=make_loss(num_classes, label_smoothing),
                  metrics=make_metrics(num_classes))


def make_metrics(num_classes: int) -> list[str | keras.metrics.Metric]:
    """The metrics a run of `num_classes` (0: a regression) records."""
    if num_classes == 0:
        return [keras.metrics.MeanAbsoluteError(name="mae"),
                keras.metrics.RootMeanSquaredError(name="rmse")]
    accuracy = (keras.metrics.BinaryAccuracy(name="accuracy",
                                             threshold=THRESHOLD)
                if num_classes == 2
                else keras.metrics.SparseCategoricalAccuracy(
                    name="accuracy"))
    return [accuracy, BalancedAccuracy(num_classes)]


def score_outputs(objective: str, outputs, labels, *, num_classes: int,
                  label_smoothing: float = 0.0) -> float:
    """The validation `objective` (`val_loss`, `val_accuracy`, ...) of a
    model's outputs for `labels`, by the same loss and metrics a run
    compiles (`make_loss`, `make_metrics`: label smoothing and the
    threshold included), so an average of models' outputs is scored as a
    run scores its own."""
    if objective == "val_loss":
        loss = make_loss(num_classes, label_smoothing)
        return float(loss(labels, outputs))
    name = objective.removeprefix("val_")
    metric = next(m for m in make_metrics(num_classes) if m.name == name)
    metric.update_state(labels, outputs)
    return float(metric.result())
