import sys

from fmkit.cli import main

sys.exit(main())
