"""Keras model builders for recurrent text classifiers.

`models.config` is plain Python; `models.builder` imports Keras. Import the
builder where a model is built so that configuration stays light.
"""
