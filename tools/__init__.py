"""Tools for running and trying the product: the `truffle-ashby` command, the one-machine dev
stack, the demo, and the two local stand-ins (the Ashby sandbox and the mail sink).

This package sits above everything else: it may import any part of the product, and no product
module imports it.
"""
