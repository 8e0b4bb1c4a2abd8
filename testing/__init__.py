"""What the tests share beyond conftest.py: fixtures by concern, loaded from it as pytest plugins, and
helpers the tests import."""
