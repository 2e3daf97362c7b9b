"""An input's bookkeeping (dora_zenoh.node.inputs): what the primary input counts as arrived and
dropped, from the sequence numbers in its messages' attachments. Pure logic, no Zenoh."""
from __future__ import annotations

from dora_zenoh.node.inputs import InputQueue
from dora_zenoh.wire import codec as wire


def attachments(*seqs: int | None) -> list[bytes]:
    """The attachments of a dora-zenoh sender's messages (None: a plain Zenoh publisher's)."""
    return [b"" if s is None else wire.attachment(s, 1, None) for s in seqs]


def primary(last_seq: int) -> InputQueue:
    """A primary input that has delivered messages 0..last_seq."""
    q = InputQueue("data", 10, False, None)
    q.arrived_all(attachments(*range(last_seq + 1)))
    assert (q.first_seq, q.last_seq, q.received, q.dropped) == (0, last_seq, last_seq + 1, 0)
    return q


def test_a_batch_with_no_gap_counts_every_message_and_no_drop():
    q = primary(4)
    q.arrived_all(attachments(5, 6, 7, 8))
    assert (q.last_seq, q.received, q.dropped) == (8, 9, 0)


def test_gaps_anywhere_in_a_batch_are_counted_exactly():
    q = primary(4)
    q.arrived_all(attachments(7, 8, 9))          # 5 and 6 pushed out before the batch
    assert (q.last_seq, q.received, q.dropped) == (9, 10, 2)
    q.arrived_all(attachments(10, 13, 14, 20))   # 11, 12 and 15..19 inside it
    assert (q.last_seq, q.received, q.dropped) == (20, 21, 9)


def test_a_plain_publishers_messages_count_one_by_one():
    q = InputQueue("data", 10, False, None)
    q.arrived_all(attachments(None, None, None))
    assert (q.last_seq, q.received, q.dropped) == (None, 3, 0)
