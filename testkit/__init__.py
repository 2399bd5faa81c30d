"""Test support as a library: what the tests and the benchmark scripts share (the deployed
world, service processes, network helpers) and the project's pytest plugin. Installed with the
project for development; nothing in the product imports it."""
