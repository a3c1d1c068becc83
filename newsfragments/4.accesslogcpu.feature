The combined access log skips escaping text that holds nothing to escape and formats its time once a second, so each line costs the I/O thread less.
