"""The DR state of each environment (active site, fencing epoch, the run that holds it, its history), kept in
Azure Blob and changed only by compare-and-set: see dr_state.py."""

from multicloud_dr.state.dr_state import (
    HISTORY_LIMIT,
    DrState,
    DrStateStore,
    Fencing,
    HistoryEntry,
    Holder,
    Operation,
    StateHeldError,
    Step,
    Transition,
)

__all__ = ["HISTORY_LIMIT", "DrState", "DrStateStore", "Fencing", "HistoryEntry", "Holder", "Operation",
           "StateHeldError", "Step", "Transition"]
