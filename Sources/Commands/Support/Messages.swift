/// An error that has already been reported, or a plain message for the user; exits with `status`.
public struct CommandFailure: Error, CustomStringConvertible {
    public let description: String
    public let status: Int32
    public init(_ message: String, status: Int32 = 1) { description = message; self.status = status }
}
