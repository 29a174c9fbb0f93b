import Crypto
import FoundationEssentials

/// A content digest `algorithm:hex`. Only `sha256` and `sha512` are accepted, with lowercase hex of
/// the exact length: a digest is validated before it is ever used to build a path or a URL.
public struct Digest: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let algorithm: String
    public let hex: String

    public enum ParseError: Error, CustomStringConvertible {
        case invalid(String)
        public var description: String {
            switch self {
            case .invalid(let s): return "invalid digest: \(s.prefix(100))"
            }
        }
    }

    public init(algorithm: String, hex: String) throws {
        let expected: Int
        switch algorithm {
        case "sha256": expected = 64
        case "sha512": expected = 128
        default: throw ParseError.invalid("\(algorithm):\(hex)")
        }
        guard hex.utf8.count == expected,
            hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { throw ParseError.invalid("\(algorithm):\(hex)") }
        self.algorithm = algorithm
        self.hex = hex
    }

    public init(parsing string: String) throws {
        guard let colon = string.firstIndex(of: ":") else { throw ParseError.invalid(string) }
        try self.init(algorithm: String(string[..<colon]), hex: String(string[string.index(after: colon)...]))
    }

    /// SHA-256 of `data`.
    public static func sha256(of data: some DataProtocol) -> Digest {
        let hex = Digest.lowercaseHex(SHA256.hash(data: data))
        return try! Digest(algorithm: "sha256", hex: hex)
    }

    public var description: String { "\(algorithm):\(hex)" }
    /// The udocker layer file name, e.g. `sha256:abcd…`.
    public var fileName: String { description }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: s)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
    public static func < (a: Digest, b: Digest) -> Bool { a.description < b.description }

    /// Lowercase hex of a hash's bytes (OCI sits below UDockerSystem's `Format.hex`).
    static func lowercaseHex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// An incremental digest computation that can be fed while bytes stream.
public struct DigestHasher {
    private var sha256 = SHA256()
    public init() {}
    public mutating func update(_ bytes: UnsafeRawBufferPointer) { sha256.update(bufferPointer: bytes) }
    public mutating func update(_ data: some DataProtocol) { sha256.update(data: data) }
    public func finalize() -> Digest {
        let hex = Digest.lowercaseHex(sha256.finalize())
        return try! Digest(algorithm: "sha256", hex: hex)
    }
}
