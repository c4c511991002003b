"""Has neither ``application`` nor ``app``: loading it by bare module name must fail."""

something_else = None
