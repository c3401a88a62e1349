"""Headless core: nothing below this package may import Textual (a test enforces it)."""
