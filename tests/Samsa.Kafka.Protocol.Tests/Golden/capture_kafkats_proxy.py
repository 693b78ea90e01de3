# Recording TCP proxy: listens on argv[1], forwards to argv[2], logs client->broker request frames
# of API keys in argv[4] (comma list) as "key version bodyhex" lines to argv[3].
import socket, sys, threading
lport, bport, out, keys = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], {int(k) for k in sys.argv[4].split(',')}
lock = threading.Lock()
def uvarint(b, i):
    shift = v = 0
    while True:
        x = b[i]; i += 1; v |= (x & 0x7f) << shift; shift += 7
        if not x & 0x80: return v, i
def record(frame):
    key = int.from_bytes(frame[0:2], 'big'); ver = int.from_bytes(frame[2:4], 'big')
    if key not in keys: return
    i = 8
    n = int.from_bytes(frame[i:i+2], 'big', signed=True); i += 2
    if n > 0: i += n
    cnt, i = uvarint(frame, i)     # header v2 tagged fields (both captured APIs are flexible)
    for _ in range(cnt):
        _, i = uvarint(frame, i); sz, i = uvarint(frame, i); i += sz
    with lock, open(out, 'a') as f: f.write(f"{key} {ver} {frame[i:].hex()}\n")
def pump(src, dst, parse):
    buf = b''
    try:
        while True:
            d = src.recv(65536)
            if not d: break
            dst.sendall(d)
            if parse:
                buf += d
                while len(buf) >= 4:
                    size = int.from_bytes(buf[:4], 'big')
                    if len(buf) < 4 + size: break
                    record(buf[4:4+size]); buf = buf[4+size:]
    except OSError: pass
    finally:
        for s in (src, dst):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); srv.bind(('127.0.0.1', lport)); srv.listen(50)
while True:
    c, _ = srv.accept()
    b = socket.create_connection(('127.0.0.1', bport))
    threading.Thread(target=pump, args=(c, b, True), daemon=True).start()
    threading.Thread(target=pump, args=(b, c, False), daemon=True).start()
