"""Consultants: expert staff lent by the day, their matching to needs, engagements and
timesheets."""
