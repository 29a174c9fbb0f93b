import Foundation

/// A fresh directory under $TMPDIR (or /tmp), removed (permissions fixed first) on `remove()`.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(prefix: String = "udocker-test") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        path = String(cString: p)
    }

    public func url(_ relative: String = "") -> URL { URL(fileURLWithPath: relative.isEmpty ? path : "\(path)/\(relative)") }
    public func sub(_ relative: String) -> String { "\(path)/\(relative)" }

    /// Removes the tree, first making every directory writable and searchable.
    public func remove() {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "chmod -R u+rwX \"$1\" 2>/dev/null; rm -rf \"$1\"", "sh", path]
        try? p.run(); p.waitUntilExit()
    }

    deinit { remove() }
}
