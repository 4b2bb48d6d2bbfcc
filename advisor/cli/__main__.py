"""`python -m advisor.cli`: the `ecolobster` command."""

import sys

from advisor.cli import main

sys.exit(main())
