"""The thin Dagster layer: assets, checks, partitions, schedule. Nothing below imports it."""
