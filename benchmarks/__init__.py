"""Benchmarks, run side by side against tomyum and Tansu (not tests: they print figures)."""
