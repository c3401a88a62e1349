"""Stopping what holds a port: plan, refusals, pidfd signals, the port afterwards."""
