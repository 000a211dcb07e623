"""The bottom layer: records that cross boundaries, the error hierarchy, settings.

Everything else in vidagent may import from here; nothing here imports another vidagent layer.
"""
