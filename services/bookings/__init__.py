"""Bookings: reservations, their approval workflow and condition reports."""
