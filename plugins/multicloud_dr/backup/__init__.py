"""Nightly MySQL backup: mysqldump streamed through compression and hashing into Azure Blob,
with a manifest (written last), verification, extra copies and retention."""
