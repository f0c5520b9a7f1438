"""The one-machine stack: what runs the service locally without AWS."""
