# Loopback CDN for the import benchmark: /p/<n>/<path> serves cdn/<path>, with ETags (304s).
import hashlib, os, sys
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
ROOT = sys.argv[1]
import socket
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup()
        # No Nagle: headers and body go out at once (else delayed ACKs cap keep-alive at ~25 req/s a connection).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def log_message(self, *a): pass
    def do_GET(self):
        parts = self.path.split("?")[0].split("/", 3)
        rel = parts[3] if len(parts) > 3 else ""
        p = os.path.join(ROOT, rel)
        try:
            data = open(p, "rb").read()
        except OSError:
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        tag = '"%s"' % hashlib.md5(data).hexdigest()
        if self.headers.get("If-None-Match") == tag:
            self.send_response(304); self.send_header("ETag", tag); self.send_header("Content-Length", "0"); self.end_headers(); return
        self.send_response(200); self.send_header("ETag", tag); self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Type", "image/jpeg"); self.end_headers(); self.wfile.write(data)
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), H).serve_forever()
