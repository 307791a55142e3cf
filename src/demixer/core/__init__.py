"""Numerical core: numpy + scipy only. No I/O, no Qt, no printing.

Public functions validate their inputs and raise ValueError naming the problem; private kernels
(leading underscore) assume valid input.
"""
