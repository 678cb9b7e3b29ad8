"""Entry point for ``python -m tracedsl``."""

from tracedsl.cli import main

if __name__ == "__main__":
    main()
