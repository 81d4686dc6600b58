"""`python -m detector.cli` (and spark-submit of this file) runs the command line."""

from detector.cli import main

if __name__ == "__main__":
    main()
