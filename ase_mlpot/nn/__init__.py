"""Building blocks shared by the architectures (cutoffs, radial bases, scatter sums)."""
