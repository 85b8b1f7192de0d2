"""`python -m kubetune_trainer.eval`: see cli.py."""

from .cli import main

raise SystemExit(main())
