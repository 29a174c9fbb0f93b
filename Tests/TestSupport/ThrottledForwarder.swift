import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A TCP forwarder on 127.0.0.1 in front of a real registry, sending the registry's replies at
/// `bytesPerSecond` (a small Python program), so that a signal can land in the middle of a blob.
public final class ThrottledForwarder: @unchecked Sendable {
    public let port: Int
    let process: Process

    init(port: Int, process: Process) { self.port = port; self.process = process }

    /// `target`: `host:port` of the registry; `directory` holds the port file.
    /// `pauseAfter`: once that many bytes went from the target to the client (over all connections),
    /// the forwarder stops passing data on (connections stay open) until it is stopped: a download
    /// is then certain to be mid-way however late the test looks at it.
    /// `drip`: past `pauseAfter`, one byte a second on each connection instead of nothing (a
    /// registry whose transfer never stops but never gets anywhere).
    public static func start(
        to target: String, bytesPerSecond: Int, pauseAfter: Int = 0, drip: Bool = false, in directory: String
    ) async throws
        -> ThrottledForwarder
    {
        let portFile = "\(directory)/forwarder.port"
        let (p, port) = try await PythonService.start(
            script, arguments: [target, String(bytesPerSecond), portFile, String(pauseAfter), drip ? "drip" : "pause"],
            portFile: portFile, quietErrors: true, what: "the throttled forwarder")
        return ThrottledForwarder(port: port, process: p)
    }

    public var host: String { "127.0.0.1:\(port)" }

    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    static let script = #"""
        import os, socket, sys, threading, time
        host, port = sys.argv[1].rsplit(":", 1)
        rate = int(sys.argv[2])
        pause = int(sys.argv[4])
        sent = [0]
        lock = threading.Lock()
        srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0)); srv.listen(64)
        with open(sys.argv[3] + ".tmp", "w") as f: f.write(str(srv.getsockname()[1]))
        os.rename(sys.argv[3] + ".tmp", sys.argv[3])
        def pipe(a, b, limit):
            try:
                while True:
                    d = a.recv(16384 if limit else 65536)
                    if not d: break
                    if limit and pause:
                        with lock:
                            sent[0] += len(d)
                            over = sent[0] >= pause
                        if over and sys.argv[5] == "drip":
                            for i in range(len(d)):
                                b.sendall(d[i:i + 1]); time.sleep(1)
                            continue
                        if over:
                            while True: time.sleep(3600)
                    b.sendall(d)
                    if limit: time.sleep(len(d) / limit)
            except OSError: pass
            finally:
                for s in (a, b):
                    try: s.shutdown(socket.SHUT_RDWR)
                    except OSError: pass
        def handle(c):
            u = socket.create_connection((host, int(port)))
            threading.Thread(target=pipe, args=(c, u, 0), daemon=True).start()
            pipe(u, c, rate)
        while True:
            c, _ = srv.accept()
            threading.Thread(target=handle, args=(c,), daemon=True).start()
        """#
}
