"""The shared kernel: settings, the store and its migrations, errors, auth, TLS, health, metrics."""
