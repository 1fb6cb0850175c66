import sys

from vaewatch.cli import main

sys.exit(main())
