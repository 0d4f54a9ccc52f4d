"""Built-in safety-filter plugin."""
