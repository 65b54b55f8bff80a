import sys

from ironic_configdrive.cli import main

sys.exit(main())
