"""A DNS stub for scripts/bench-image.sh: answers 127.0.0.1 to every A query (and no
record to any other type) on ADDRESS:53, so a container given a resolv.conf naming ADDRESS
proves the static binary resolves names through DNS, not only through /etc/hosts.

    python3 scripts/dns_stub.py ADDRESS
"""

import socket
import struct
import sys

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], 53))
while True:
    data, peer = sock.recvfrom(512)
    end = 12  # the question's name: length-prefixed labels up to a zero byte
    while data[end]:
        end += data[end] + 1
    question, qtype = data[12 : end + 5], data[end + 1 : end + 3]
    count = 1 if qtype == b"\x00\x01" else 0
    # A pointer to the question's name, type A, class IN, TTL 60, 4 bytes of address.
    answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    header = data[:2] + struct.pack(">HHHHH", 0x8180, 1, count, 0, 0)
    sock.sendto(header + question + answer * count, peer)
