"""Text sources, standardization and `tf.data` input pipelines.

`data_pipeline.config` and `data_pipeline.sources` are plain Python (NumPy);
`data_pipeline.text` and `data_pipeline.pipeline` import TensorFlow.
"""
