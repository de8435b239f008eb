"""Synthetic fingerspelling data in the exact layout of the Kaggle ASLFR competition.

The package's parts are split out in the next step; everything still lives in ``writing``.
"""

from aslfr_lib.synthetic.writing import *  # noqa: F403
from aslfr_lib.synthetic.writing import (  # noqa: F401 - private names the tests use
    _build_alphabet,
    _columns,
    _image_shape,
    main,
)
