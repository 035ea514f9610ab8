"""Configuration: wrangler files, the services file, ``load_env``."""
