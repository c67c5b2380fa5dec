"""Text sources, standardization and `tf.data` input pipelines.

`data_pipeline.config` is plain Python; `data_pipeline.readers` (files on
disk) and `data_pipeline.sources` (every source, the splits) use NumPy;
`data_pipeline.text` and `data_pipeline.pipeline` import TensorFlow.
"""
