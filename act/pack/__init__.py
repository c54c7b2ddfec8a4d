"""Packed runs: K runs of a small network trained in one process and one step, each still its
own run (its labels, data order, views, initial weights, bank and statistics). models.py: the
grouped twin of K models; step.py: the loss functions of the step over K runs."""
