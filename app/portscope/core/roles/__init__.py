"""Who serves a port: the roles around its socket and the one plan that stops it."""
