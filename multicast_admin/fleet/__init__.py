"""Fleet membership: group definitions, sources and members shared through etcd.

One concept per module: ``settings`` (agent.conf and options), ``store`` (etcd
and its key layout), ``groups`` (definitions and their rule), ``membership``
(this namespace's IGMP joins), ``ledger`` (what the agent configured),
``backend`` (the kernel through the domain API), ``agent`` (the reconcile
loop) and ``view`` (the fleet as ``multicast-proxy status`` shows it).
"""
