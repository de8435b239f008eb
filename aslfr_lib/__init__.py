"""aslfr: American Sign Language fingerspelling recognition from MediaPipe landmarks.

Modules, one concept each (TensorFlow is imported only by ``export`` and the training stack):
``vocab``, ``landmarks``, ``config``, ``atomic``, ``synthetic``, ``preprocess``, ``data``,
``layers``, ``model``, ``losses``, ``metrics``, ``optimizers``, ``schedules``, ``decoding``,
``training``, ``evaluation``, ``export``, ``submission``, ``runner``, ``video``, ``predict``,
``pipeline``, ``plots``, ``cli``.
"""

__version__ = "0.1.0"
