"""Pure domain rules: what may happen to an appointment, a code, a message or a task. No I/O, no clock of their own;
they import nothing of the hub but `vocabulary` and `clock`."""
