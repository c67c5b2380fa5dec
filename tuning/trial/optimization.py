"""What a model is compiled with: the optimizer of `train.*` and the loss
(cross-entropy, label smoothing included), the same in training and in
every evaluation."""

import keras

from tuning.trial.config import TrainConfig

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


def make_loss(num_classes: int, label_smoothing: float
              ) -> keras.losses.Loss:
    """Cross-entropy for `num_classes` (a sigmoid unit for 2)."""
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
    scored)."""
    model.compile(optimizer=optimizer,
                  loss=make_loss(num_classes, label_smoothing),
                  metrics=["accuracy"])
