"""Listings: the catalogue of what communes lend, with prices, rules and blackout periods."""
