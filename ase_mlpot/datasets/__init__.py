"""Datasets: sampling, labelling, formats."""
