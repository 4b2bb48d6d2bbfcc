"""One module per rule; each registers itself with advisor.audit.registry.rule."""
