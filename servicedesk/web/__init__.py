"""Blueprints by audience: auth, main, tickets (staff), public (customers), api."""
