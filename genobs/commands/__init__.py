"""CLI commands of genobs, one module per area; genobs/cli.py registers them."""
