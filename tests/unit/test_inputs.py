"""An input's bookkeeping (dora_zenoh.node.inputs): what the primary input counts as arrived and
dropped, from the sequence numbers in its messages' attachments. Pure logic, no Zenoh."""
from __future__ import annotations

import queue

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


def test_messages_promised_and_never_come_are_said_to_be_lost_on_the_way(capsys):
    """The sender's notice says 7, 5 came: the 2 missing never reached the node (its sender's
    link dropped them), which the report says rather than blaming a queue that had room."""
    q = InputQueue("data", 10, False, queue.SimpleQueue())
    q.arrived_all(attachments(*range(5)))
    q.finish(7)
    q.report_closed()
    assert (q.dropped, q.lost) == (2, 2)
    err = capsys.readouterr().err
    assert "is full" not in err
    assert "input 'data' lost 2 message(s) on the way" in err
    assert "input 'data' dropped 2 message(s) in all (queue_size=10; 2 of them lost on the way" in err


def test_a_sent_count_that_comes_after_the_close_is_still_counted_and_said():
    """A block input whose source ended on another machine during an outage: its supervisor's
    count of what it sent may reach the reader only after the input closed. It is counted then,
    and said (``on_lost``), once; before the close it is counted at the close."""
    said: list[int] = []
    late = InputQueue("end", 10, True, queue.SimpleQueue())
    late.arrived_all(attachments(*range(5)))
    late.close()
    late.report_closed()
    assert late.dropped == 0
    late.hint_sent(9, said.append)
    assert (late.dropped, said) == (4, [4])
    late.hint_sent(9, said.append)  # nothing more never arrived: nothing said again
    assert (late.dropped, said) == (4, [4])

    early = InputQueue("end", 10, True, queue.SimpleQueue())
    early.arrived_all(attachments(*range(5)))
    early.hint_sent(7, said.append)  # not closed yet: counted at its INPUT_CLOSED
    assert said == [4]
    early.close()
    early.report_closed()
    assert (early.dropped, said) == (2, [4, 2])
