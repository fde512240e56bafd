"""The command-line interface: parsing and dispatch only; the work lives in hsi.experiments."""
