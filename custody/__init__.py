"""The Custody domain: hashing, custody events and their rules; pure and free of I/O."""
