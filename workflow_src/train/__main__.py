"""`python -m workflow_src.train`: one training run (one cell at one seed); see loop.main."""

import sys

from workflow_src.train.loop import main

sys.exit(main())
