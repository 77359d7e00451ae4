"""A stable fingerprint of a model's weights (for bit-for-bit comparisons with stored references)."""

import hashlib


def state_hash(state) -> str:
    """SHA-256 over a state dict's keys (sorted) and raw tensor bytes."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
