"""Test-binds a port and turns the kernel's answer into a Verdict and advice."""
