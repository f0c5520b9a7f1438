import sys

from crimecast.tools.cli import main

sys.exit(main())
