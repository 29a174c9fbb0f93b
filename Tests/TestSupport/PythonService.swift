import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small stand-in service written in Python (a proxy, a forwarder, a scripted server): started
/// with `/usr/bin/python3 -c script arguments…`; it writes the port it listens on to `portFile`,
/// which is polled for up to 10 s. The one launcher of the test support's Python services.
public enum PythonService {
    public static func start(
        _ script: String, arguments: [String], portFile: String, quietErrors: Bool = false, what: String
    ) async throws -> (process: Process, port: Int) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script] + arguments
        p.standardOutput = FileHandle.nullDevice
        if quietErrors { p.standardError = FileHandle.nullDevice }
        try p.run()
        for _ in 0..<200 {
            if let port = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap({ Int($0) }) {
                return (p, port)
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        throw UserCommandError("\(what) did not start")
    }
}
