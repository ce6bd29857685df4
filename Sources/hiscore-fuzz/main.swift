// Placeholder: the fuzz driver is being written.
print("hiscore-fuzz: not built with -sanitize=fuzzer; see make fuzz")
