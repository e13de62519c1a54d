"""The booking-centre console: staff accounts, the call-back queue and the outcomes agents record."""
