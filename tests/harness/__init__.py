"""Local Kubernetes cluster harness for the tests: see README.md beside this file."""
