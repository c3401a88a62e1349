"""Textual front: the live monitor. Only this package imports Textual."""
