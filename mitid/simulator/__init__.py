"""Stand-alone stand-in for the MitID Erhverv certificate service (docs/protocol.md).

It runs as its own process (``python -m mitid.simulator serve``) and shares no code with the portal's
client, so the two sides only agree where both follow the contract. Only the standard library and
``cryptography`` are used: the simulator must start without Django settings.
"""
