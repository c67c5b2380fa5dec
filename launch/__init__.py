"""The command line (`rnntune`): the only layer that parses arguments."""
