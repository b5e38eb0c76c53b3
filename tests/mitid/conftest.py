"""MitID tests use the `simulator` and `mitid_settings` fixtures of tests/conftest.py."""
