"""`python -m llmchat` runs the same entry point as the `llmchat` script."""

from llmchat.cli import main

raise SystemExit(main())
