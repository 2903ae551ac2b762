"""The end of the data flow: the ledger's table format and writer (``ledger``) and what
every figure shares (``plotting``). The experiments decide what goes in them."""
