"""``python -m dora_zenoh`` is the ``dora-zenoh`` command."""
from dora_zenoh.cli import main

main()
