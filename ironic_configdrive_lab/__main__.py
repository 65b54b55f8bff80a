import sys

from ironic_configdrive_lab.cli import main

sys.exit(main())
