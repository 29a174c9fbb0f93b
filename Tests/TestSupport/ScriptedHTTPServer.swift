import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small plain-HTTP server (Python's `http.server`) whose answers a test writes as a Python
/// function: for hostile registries, token services and download sites that no real component
/// plays. Every request line is logged (`requests`). Listens on `host` (a loopback or this host's
/// own non-loopback address), on a free port.
///
/// `route` is the body of `def route(h, path, port):` returning `(status, headers, body)`, with
/// `h` the request handler, `path` the request path with its query, `port` the server's port;
/// body is `bytes` or `str`.
public final class ScriptedHTTPServer: @unchecked Sendable {
    public static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") }
    public let host: String
    public let port: Int
    let log: String
    let process: Process
    let tls: Bool

    init(host: String, port: Int, log: String, process: Process, tls: Bool = false) {
        self.host = host; self.port = port; self.log = log; self.process = process; self.tls = tls
    }

    /// Starts the server; `directory` holds its log and port file (named after `name`). With
    /// `tls` (PEM certificate chain and key files) it speaks https.
    public static func start(
        in directory: String, name: String, host: String = "127.0.0.1", tls: (certificate: String, key: String)? = nil,
        route: String
    ) async throws -> ScriptedHTTPServer {
        let log = "\(directory)/\(name).log", portFile = "\(directory)/\(name).port"
        let indented = route.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
        let script = """
            import http.server, json, os, ssl, sys
            log = open(sys.argv[1], "a", buffering=1)
            def route(h, path, port):
            \(indented)
            class H(http.server.BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                def do_GET(self):
                    log.write("GET " + self.path + "\\n")
                    status, headers, body = route(self, self.path, self.server.server_address[1])
                    if isinstance(body, str): body = body.encode()
                    self.send_response(status)
                    for k, v in headers.items(): self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *a): pass
            srv = http.server.ThreadingHTTPServer((sys.argv[3], 0), H)
            if len(sys.argv) > 5:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[4], sys.argv[5])
                srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
            open(sys.argv[2] + ".tmp", "w").write(str(srv.server_address[1])); os.rename(sys.argv[2] + ".tmp", sys.argv[2])
            srv.serve_forever()
            """
        let (p, port) = try await PythonService.start(
            script, arguments: [log, portFile, host] + (tls.map { [$0.certificate, $0.key] } ?? []), portFile: portFile,
            what: "the scripted HTTP server \(name)")
        return ScriptedHTTPServer(host: host, port: port, log: log, process: p, tls: tls != nil)
    }

    /// `http://host:port` (IPv6 in brackets), `https://` with TLS.
    public var base: String { "\(tls ? "https" : "http")://\(host.contains(":") ? "[\(host)]" : host):\(port)" }
    /// `host:port`.
    public var hostPort: String { "\(host.contains(":") ? "[\(host)]" : host):\(port)" }
    /// Every request line so far (`GET /path?query`).
    public var requests: [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// SIGKILL: the children of the test process have SIGTERM blocked.
    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// The first IPv4 address of an interface that is up, not loopback and not link-local: a
    /// server there is "remote" for udocker (not loopback) yet reachable without a network.
    public static let outerIPv4: String? = {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(first) }
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let ifa = cursor {
            defer { cursor = ifa.pointee.ifa_next }
            guard let sa = ifa.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET),
                ifa.pointee.ifa_flags & UInt32(IFF_UP) != 0, ifa.pointee.ifa_flags & UInt32(IFF_LOOPBACK) == 0
            else { continue }
            let a = UInt32(bigEndian: sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr })
            if a >> 16 == 0xA9FE { continue }  // 169.254/16
            return "\(a >> 24).\((a >> 16) & 0xff).\((a >> 8) & 0xff).\(a & 0xff)"
        }
        return nil
    }()
}
