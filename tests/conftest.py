"""Fixtures shared by every room's tests."""
