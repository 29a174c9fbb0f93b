import Foundation
import System

extension Output {
    /// Warnings from extracting layers: skipped device nodes are expected (every Debian image has
    /// some; /dev is bound from the host at run time), so they show with `-D` only.
    func extractionWarning(_ text: String) { if text.contains("device node") { debug(text) } else { warning(text) } }
}

/// An error that has already been reported, or a plain message for the user; exits with `status`.
public struct CommandFailure: Error, CustomStringConvertible {
    public let description: String
    public let status: Int32
    public init(_ message: String, status: Int32 = 1) { description = message; self.status = status }
}
