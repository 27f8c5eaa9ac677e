import sys

from stanlib.cli import main

sys.exit(main())
