"""The failover's own steps, each a plain library function that the DAGs and `drctl` call alike.

- `gates`: stop before the first destructive step when the evidence says the failover would lose data (F22).
- `evidence`: what the approver reads (the gates' decision and the facts behind it, as Markdown).
- `fence`: make the old primary database refuse the application's writes, or record that it could not be
  reached, so that fencing stays pending (F23, F30).
- `promote`: make the DR replica the writable primary.

Submodules are imported by what uses them; this package imports nothing, so that `drctl` pays only for the
step it runs.
"""
