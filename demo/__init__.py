"""Demo data for a local Mutualis: five communes of the Loire, their users and listings."""
