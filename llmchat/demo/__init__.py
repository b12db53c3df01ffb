"""The built-in offline demo model and the fake LLM server that serves it (and the tests)."""
