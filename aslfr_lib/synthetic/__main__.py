"""``python -m aslfr_lib.synthetic``: the same as ``aslfr synth``."""

import sys

from aslfr_lib.synthetic.writing import main

sys.exit(main(sys.argv[1:]))
