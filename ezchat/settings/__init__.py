"""Files users edit and where they live: the one TOML loader, the config file, paths, model lookup."""
