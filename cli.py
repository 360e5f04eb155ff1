#!/usr/bin/env python
"""refimpl's command line (the same as the installed ``refimpl`` command): see :mod:`refimpl.cli`.

    python cli.py figure fig4c            # the main job
    python cli.py figure --help           # the list of figures
    python cli.py verify all              # Theorems 1–3 of Feature collapse, numerically
    python cli.py bench [sgd|exact|dufm] [--json]
"""

from refimpl.cli import main

if __name__ == "__main__":
    main()
