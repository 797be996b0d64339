"""``python -m statreport``."""

from statreport.cli import main

main()
