"""The interactive face: a Textual app that streams answers from the shared client."""
