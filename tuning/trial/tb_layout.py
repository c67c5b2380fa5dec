"""TensorBoard custom-scalars layout: train against validation per chart,
and the gap in charts of its own (select a run to see its own curves)."""

import pathlib

import tensorflow as tf
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as cs_summary


def _chart(title: str, *tags: str) -> layout_pb2.Chart:
    return layout_pb2.Chart(
        title=title, multiline=layout_pb2.MultilineChartContent(tag=tags))


LAYOUT = layout_pb2.Layout(category=[
    layout_pb2.Category(title="Overfitting: train against validation",
                        chart=[
        _chart("loss (train and validation runs)", r"^epoch_loss$"),
        _chart("accuracy (train and validation runs)", r"^epoch_accuracy$"),
    ]),
    layout_pb2.Category(title="Overfitting: the gap", chart=[
        _chart("accuracy gap (train - validation)", r"^epoch_accuracy_gap$"),
        _chart("loss gap (validation - train)", r"^epoch_loss_gap$"),
    ]),
])
# A regression's: its errors where a classification has accuracies.
REGRESSION_LAYOUT = layout_pb2.Layout(category=[
    layout_pb2.Category(title="Overfitting: train against validation",
                        chart=[
        _chart("loss, mean squared error (train and validation runs)",
               r"^epoch_loss$"),
        _chart("mean absolute and root mean squared error",
               r"^epoch_(mae|rmse)$"),
    ]),
    layout_pb2.Category(title="Overfitting: the gap", chart=[
        _chart("loss gap (validation - train)", r"^epoch_loss_gap$"),
    ]),
])


def write_layout(workdir: pathlib.Path, *, regression: bool = False
                 ) -> None:
    """Writes the layout once into `workdir/logs` (a run of its own)."""
    layout = REGRESSION_LAYOUT if regression else LAYOUT
    writer = tf.summary.create_file_writer(str(workdir / "logs"))
    with writer.as_default():
        tf.summary.experimental.write_raw_pb(
            cs_summary.pb(layout).SerializeToString(), step=0)
    writer.close()
