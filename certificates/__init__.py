"""Inventory and lifecycle of certificates; knows nothing of any particular CA."""
