import sys

from ironic_configdrive.lab.cli import main

sys.exit(main())
