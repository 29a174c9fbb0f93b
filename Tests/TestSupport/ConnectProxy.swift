import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real HTTP CONNECT proxy on 127.0.0.1 (a small Python program: what AsyncHTTPClient and curl
/// speak to a proxy), logging each request line. For tests of `https_proxy` / `http_proxy`.
public final class ConnectProxy: @unchecked Sendable {
    public static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") }
    public let port: Int
    let log: String
    let process: Process

    init(port: Int, log: String, process: Process) { self.port = port; self.log = log; self.process = process }

    /// Starts the proxy; `directory` holds its log and port file (readable by the test).
    /// `routes`: `host:port` asked for → `host:port` connected to instead (a stand-in for a site
    /// on the internet; the log shows what was asked for).
    public static func start(in directory: String, routes: [String: String] = [:]) async throws -> ConnectProxy {
        let log = "\(directory)/proxy.log", portFile = "\(directory)/proxy.port"
        let table = routes.map { "\($0.key)=\($0.value)" }
        let (p, port) = try await PythonService.start(
            script, arguments: [log, portFile] + table, portFile: portFile, what: "the CONNECT proxy")
        return ConnectProxy(port: port, log: log, process: p)
    }

    public var url: String { "http://127.0.0.1:\(port)" }
    /// Every request line so far (`CONNECT host:port HTTP/1.1`).
    public var requestLines: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    static let script = #"""
        import socket, sys, threading
        log = open(sys.argv[1], "a", buffering=1)
        routes = dict(a.split("=", 1) for a in sys.argv[3:])
        srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0)); srv.listen(64)
        with open(sys.argv[2] + ".tmp", "w") as f: f.write(str(srv.getsockname()[1]))
        import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
        def pipe(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d: break
                    b.sendall(d)
            except OSError: pass
            finally:
                try: b.shutdown(socket.SHUT_WR)
                except OSError: pass
        def handle(c):
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = c.recv(4096)
                if not d: c.close(); return
                buf += d
            head, rest = buf.split(b"\r\n\r\n", 1)
            line = head.split(b"\r\n")[0].decode()
            log.write(line + "\n")
            method, target = line.split(" ")[:2]
            if method != "CONNECT":
                c.sendall(b"HTTP/1.1 405 No\r\nContent-Length: 0\r\n\r\n"); c.close(); return
            host, port = routes.get(target, target).rsplit(":", 1)
            u = socket.create_connection((host, int(port)))
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest: u.sendall(rest)
            threading.Thread(target=pipe, args=(c, u), daemon=True).start()
            pipe(u, c)
        while True:
            c, _ = srv.accept()
            threading.Thread(target=handle, args=(c,), daemon=True).start()
        """#
}
