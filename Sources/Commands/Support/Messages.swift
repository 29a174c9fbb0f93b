import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// udocker's message levels: 0 ERR, 1 MSG, 2 WAR, 3 INF (default), 4 VER, 5 DBG.
public struct Messages: Sendable {
    public var level: Int

    public func out(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
    public func error(_ text: String) { FileHandle.standardError.write(Data(("Error: " + text + "\n").utf8)) }
    public func warning(_ text: String) { if level >= 2 { FileHandle.standardError.write(Data(("Warning: " + text + "\n").utf8)) } }
    public func info(_ text: String) { if level >= 3 { FileHandle.standardError.write(Data(("Info: " + text + "\n").utf8)) } }
    /// Warnings from extracting layers: skipped device nodes are expected (every Debian image has
    /// some; /dev is bound from the host at run time), so they show with `-D` only.
    public func extractionWarning(_ text: String) { if text.contains("device node") { debug(text) } else { warning(text) } }
    public func debug(_ text: String) { if level >= 5 { FileHandle.standardError.write(Data(("Debug: " + text + "\n").utf8)) } }
}

/// An error that has already been reported, or a plain message for the user; exits with `status`.
public struct CommandFailure: Error, CustomStringConvertible {
    public let description: String
    public let status: Int32
    public init(_ message: String, status: Int32 = 1) { description = message; self.status = status }
}
