"""Model builders, and the recurrent-layer semantics of the seed notebook."""

import keras
import numpy as np
import pytest

from models.builder import CELLS, build_model
from models.config import CELL_NAMES, ModelConfig
from launch.presets import get_preset


def test_registry_matches_config_names():
    assert tuple(CELLS) == CELL_NAMES


def test_seed_model_has_the_notebooks_parameters():
    config = get_preset("seed")
    model = build_model(config.model, vocab_size=10000, num_classes=2)
    counts = [layer.count_params() for layer in model.layers[1:]]
    assert counts == [320_000, 6_208, 3_104, 528, 17]
    assert model.count_params() == 329_857
    assert model.output_shape == (None, 1)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_each_cell_builds_stacks_and_classifies(cell):
    config = ModelConfig(cell=cell, units=8, num_layers=3, units_decay=1.0,
                         embedding_dim=4, dropout=0.1, head_units=0,
                         bidirectional=True, mask_zero=True)
    model = build_model(config, vocab_size=50, num_classes=3)
    recurrent = [layer for layer in model.layers
                 if isinstance(layer, keras.layers.Bidirectional)]
    assert [layer.forward_layer.return_sequences for layer in recurrent] == [
        True, True, False]
    assert all(isinstance(layer.forward_layer, CELLS[cell])
               for layer in recurrent)
    assert recurrent[-1].output.shape == (None, 16)  # both directions
    assert model.get_layer("embedding").mask_zero
    probs = model(np.array([[1, 2, 3, 0, 0, 0, 0], [4, 5, 0, 0, 0, 0, 0]]))
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, rtol=1e-5)


def test_one_train_step_changes_every_trainable_weight():
    model = build_model(ModelConfig(cell="gru", units=4, num_layers=2,
                                    embedding_dim=4, head_units=4),
                        vocab_size=20, num_classes=2)
    model.compile(optimizer="adam", loss="binary_crossentropy")
    x = np.arange(1, 21).reshape(4, 5) % 20
    y = np.array([0, 1, 0, 1])
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.train_on_batch(x, y)
    after = [w.numpy() for w in model.trainable_weights]
    assert all(not np.allclose(b, a) for b, a in zip(before, after))


# The notebook's first half: what each layer returns for a (1, 10, 4) input.
INPUT = np.random.default_rng(0).normal(size=(1, 10, 4)).astype("float32")


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_return_sequences_shapes(cell):
    last = CELLS[cell](16, return_sequences=False)(INPUT)
    every = CELLS[cell](16, return_sequences=True)(INPUT)
    assert last.shape == (1, 16)
    assert every.shape == (1, 10, 16)


@pytest.mark.parametrize("cell", ["simple_rnn", "gru"])
def test_return_state_equals_the_final_output(cell):
    output, state = CELLS[cell](16, return_state=True)(INPUT)
    assert output.shape == state.shape == (1, 16)
    np.testing.assert_allclose(output, state)
    sequence, state = CELLS[cell](16, return_sequences=True,
                                  return_state=True)(INPUT)
    np.testing.assert_allclose(sequence[:, -1], state)


def test_lstm_returns_hidden_and_cell_state():
    sequence, hidden, carry = keras.layers.LSTM(
        16, return_sequences=True, return_state=True)(INPUT)
    assert sequence.shape == (1, 10, 16)
    assert hidden.shape == carry.shape == (1, 16)
    np.testing.assert_allclose(sequence[:, -1], hidden)
    assert not np.allclose(hidden, carry)


def test_cudnn_eligibility_is_read_from_the_config_alone():
    from models.config import cudnn_layers

    assert [(layer["layer"], layer["cudnn"]) for layer in cudnn_layers(
        ModelConfig(cell="lstm", num_layers=2))] == [
        ("lstm_0", True), ("lstm_1", True)]
    (gru,) = cudnn_layers(ModelConfig(cell="gru", num_layers=1,
                                      recurrent_dropout=0.2))
    assert not gru["cudnn"] and "recurrent_dropout=0.2" in gru["why"]
    (rnn,) = cudnn_layers(ModelConfig(cell="simple_rnn", num_layers=1))
    assert not rnn["cudnn"] and "SimpleRNN" in rnn["why"]
    # What the builder fixes is what Keras asks of its cuDNN path.
    model = build_model(ModelConfig(cell="gru", num_layers=1),
                        vocab_size=20, num_classes=2)
    layer = model.get_layer("gru_0")
    assert (layer.activation.__name__, layer.recurrent_activation.__name__,
            layer.use_bias, layer.unroll, layer.reset_after,
            layer.recurrent_dropout) == ("tanh", "sigmoid", True, False,
                                         True, 0)


def test_the_model_takes_any_length():
    model = build_model(ModelConfig(cell="gru", units=4, num_layers=1,
                                    embedding_dim=4, mask_zero=True,
                                    pooling="mean"),
                        vocab_size=20, num_classes=2)
    for length in (3, 11):
        ids = np.ones((2, length), dtype="int32")
        assert model.predict(ids, verbose=0).shape == (2, 1)


@pytest.mark.parametrize("pooling", ["mean", "max", "attention"])
def test_pooling_leaves_the_padding_out(pooling):
    """With masking, a text's probability is the same at any padding."""
    model = build_model(ModelConfig(cell="gru", units=4, num_layers=1,
                                    embedding_dim=4, mask_zero=True,
                                    bidirectional=True, pooling=pooling),
                        vocab_size=20, num_classes=3)
    text = [[3, 7, 2, 9]]
    short = model.predict(np.array(text), verbose=0)
    padded = model.predict(np.array([text[0] + [0] * 6]), verbose=0)
    np.testing.assert_allclose(short, padded, rtol=1e-5, atol=1e-6)
    assert model.get_layer(f"{pooling}_pooling").output.shape == (None, 8)


def test_masked_max_never_takes_a_masked_step():
    from models.layers import MaskedMaxPooling1D

    x = np.array([[[1.0, -2.0], [9.0, 9.0]], [[-1.0, -3.0], [5.0, 5.0]]],
                 dtype="float32")
    mask = np.array([[True, False], [False, False]])
    pooled = MaskedMaxPooling1D()(x, mask=mask).numpy()
    np.testing.assert_array_equal(pooled, [[1.0, -2.0], [0.0, 0.0]])
    np.testing.assert_array_equal(MaskedMaxPooling1D()(x).numpy(),
                                  [[9.0, 9.0], [5.0, 5.0]])


def test_attention_weights_are_a_softmax_over_the_unmasked_steps():
    from models.layers import AttentionPooling1D

    layer = AttentionPooling1D(units=3)
    x = np.random.default_rng(1).normal(size=(2, 5, 4)).astype("float32")
    mask = np.array([[True, True, True, False, False]] * 2)
    pooled = layer(x, mask=mask).numpy()
    hidden = np.tanh(x @ layer.kernel.numpy() + layer.bias.numpy())
    scores = hidden @ layer.query.numpy()
    weights = np.exp(scores[:, :3]) / np.exp(scores[:, :3]).sum(
        axis=1, keepdims=True)
    np.testing.assert_allclose(
        pooled, np.einsum("bt,btf->bf", weights, x[:, :3]), rtol=1e-5)


def test_embedding_dropout_drops_whole_tokens():
    model = build_model(ModelConfig(cell="gru", units=4, num_layers=1,
                                    embedding_dim=6, embedding_dropout=0.5),
                        vocab_size=20, num_classes=2)
    ids = np.arange(1, 41).reshape(2, 20) % 19 + 1
    embedded = model.get_layer("embedding")(ids).numpy()
    dropped = model.get_layer("embedding_dropout")(
        embedded, training=True).numpy()
    kept = np.all(np.isclose(dropped, 2 * embedded), axis=-1)
    gone = np.all(dropped == 0, axis=-1)
    assert np.all(kept | gone)  # every token whole, or all of it gone
    assert kept.any() and gone.any()
    np.testing.assert_array_equal(
        model.get_layer("embedding_dropout")(embedded).numpy(), embedded)


def test_pooling_layers_round_trip_through_a_saved_model(tmp_path):
    config = ModelConfig(cell="lstm", units=4, num_layers=2,
                         embedding_dim=4, mask_zero=True,
                         embedding_dropout=0.2, pooling="attention")
    model = build_model(config, vocab_size=20, num_classes=2)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    ids = np.array([[1, 2, 3, 0], [4, 5, 6, 7]])
    np.testing.assert_allclose(loaded.predict(ids, verbose=0),
                               model.predict(ids, verbose=0), rtol=1e-6)
