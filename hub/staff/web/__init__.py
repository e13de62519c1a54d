"""The booking-centre console's pages, mounted at /staff."""
