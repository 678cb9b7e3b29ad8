"""Fitting a `.trace` program to a trace."""
