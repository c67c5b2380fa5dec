"""The one import an exported rnntune model needs to load:

    import rnntune  # noqa: F401  registers what exported models hold
    import keras, numpy as np
    model = keras.models.load_model("runs/first/gru/model.keras")
    model.predict(np.array(["A wonderful film."], dtype=object))

An exported model holds pieces of rnntune's own, registered with Keras
under the `rnntune>` prefix: the text standardization
(`data_pipeline.text.standardize`) and the mask-aware poolings
(`models.layers`). Keras finds them by that name once the modules that
define them are imported; this module imports each of them, and nothing
else (no tuning backend, no Ray), so loading a model costs TensorFlow and
Keras alone. A new registered piece is imported here.
"""

import data_pipeline.text  # noqa: F401  the standardization
import models.layers  # noqa: F401  the max and attention poolings
