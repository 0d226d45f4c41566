"""The built-in backends, each a plugin module registered through the same
``li_register_backends`` hook that third-party backends use. Importing a
plugin module never imports its array library."""
