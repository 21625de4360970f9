"""The composition root: which processes make up Mutualis, and the operator's command line."""
