import contextlib
import json

import zenoh

conf = zenoh.Config()
conf.insert_json5("mode", '"peer"')
conf.insert_json5("scouting/multicast/enabled", "false")
conf.insert_json5("connect/endpoints", '["tcp/127.0.0.1:7447"]')
with zenoh.open(conf) as session, contextlib.suppress(KeyboardInterrupt):
    with session.declare_subscriber("dora/**") as sub:
        for sample in sub:
            meta = json.loads(sample.attachment.to_bytes()) if sample.attachment else {}
            print(sample.key_expr, sample.encoding, len(sample.payload), meta)
