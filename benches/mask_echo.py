"""Echo check for a build: masked binary frames of awkward lengths through an
echo server; every payload must come back unmasked and intact."""
import base64, os, socket, struct, sys

def frame(payload, key):
    n = len(payload)
    head = bytes([0x82])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked

def read_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise SystemExit("connection closed early")
        buf += chunk
    return bytes(buf)

def main(port):
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        byte = sock.recv(1)
        if not byte:
            raise SystemExit(f"connection closed in the handshake: {head[:40]!r}")
        head += byte
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit(f"handshake refused: {head[:40]!r}")
    sizes = [1, 63, 64, 127, 4095, 4096, 4097, 65535, 65536, 100003, 1 << 20]
    for n in sizes:
        payload = os.urandom(n)
        sock.sendall(frame(payload, os.urandom(4)))
        b0, b1 = read_exact(sock, 2)
        n2 = b1 & 0x7F
        if n2 == 126:
            n2 = struct.unpack("!H", read_exact(sock, 2))[0]
        elif n2 == 127:
            n2 = struct.unpack("!Q", read_exact(sock, 8))[0]
        echo = read_exact(sock, n2)
        if b0 != 0x82 or b1 & 0x80 or echo != payload:
            raise SystemExit(f"payload of {n} bytes came back wrong")
    print(f"{len(sizes)} payloads ({sizes[0]} B to {sizes[-1]} B) echoed intact")

main(int(sys.argv[1]))
