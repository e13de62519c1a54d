"""The booking-centre console under /staff: sign-in, the task queue, patient look-up, admin."""
