"""`make lecture`: the lecture's claims run as small sweeps on this machine, with verdicts."""
