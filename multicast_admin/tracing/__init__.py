"""`multicast-proxy trace`: the modules' tracepoints, live, through bcc.

events.py decodes and words what the kernel reported (no bcc needed: unit
tested); probe.py is the BPF program and its loading with bcc.
"""
