"""Benchmarks, and the asyncio contrast they compare trioherd with."""
