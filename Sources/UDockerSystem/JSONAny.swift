import FoundationEssentials

/// JSON as untyped values, the shapes `JSONSerialization` used: `[String: Any]`, `[Any]`,
/// `String`, `Int`, `Double`, `Bool` and `JSONNull.null`; written back the way Foundation's
/// `JSONSerialization` wrote it (same key order, spacing and escapes), so files and output stay
/// byte-identical. For documents read loosely (credentials, docker-save metadata, `inspect`);
/// typed documents use Codable models.
public enum JSONAny {
    /// Parses `bytes` (any top-level value); nil when they are not JSON.
    public static func parse(_ bytes: some Collection<UInt8>) -> Any? {
        (try? JSONDecoder().decode(Node.self, from: Data(bytes)))?.value
    }

    /// Parses `bytes` as a JSON object; nil when they are not one.
    public static func object(_ bytes: some Collection<UInt8>) -> [String: Any]? { parse(bytes) as? [String: Any] }

    public struct Options: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let prettyPrinted = Options(rawValue: 1)
        public static let withoutEscapingSlashes = Options(rawValue: 2)
    }

    public struct InvalidValue: Error, CustomStringConvertible {
        public var description: String { "a value that JSON cannot hold" }
    }

    /// Keys sorted as `JSONSerialization`'s `.sortedKeys` sorts them (numeric, case-insensitive,
    /// lowercase first on a tie).
    public static func serialize(_ value: Any, options: Options = []) throws -> [UInt8] {
        var w = Writer(options: options)
        try w.write(value, depth: 0)
        return w.out
    }

    private struct Node: Decodable {
        let value: Any
        init(from decoder: any Decoder) throws {
            if let c = try? decoder.singleValueContainer() {
                if c.decodeNil() { value = JSONNull.null; return }
                if let b = try? c.decode(Bool.self) { value = b; return }
                if let i = try? c.decode(Int.self) { value = i; return }
                if let d = try? c.decode(Double.self) { value = d; return }
                if let s = try? c.decode(String.self) { value = s; return }
            }
            if var a = try? decoder.unkeyedContainer() {
                var out: [Any] = []
                while !a.isAtEnd { out.append(try a.decode(Node.self).value) }
                value = out; return
            }
            let o = try decoder.container(keyedBy: Key.self)
            var out: [String: Any] = [:]
            for k in o.allKeys { out[k.stringValue] = try o.decode(Node.self, forKey: k).value }
            value = out
        }
    }

    private struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    private struct Writer {
        let options: Options
        var out: [UInt8] = []
        var pretty: Bool { options.contains(.prettyPrinted) }

        mutating func indent(_ depth: Int) { out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: depth * 2)) }

        mutating func write(_ value: Any, depth: Int) throws {
            switch value {
            case is JSONNull: out.append(contentsOf: "null".utf8)
            case let b as Bool: out.append(contentsOf: (b ? "true" : "false").utf8)
            case let i as Int: out.append(contentsOf: String(i).utf8)
            case let i as Int64: out.append(contentsOf: String(i).utf8)
            case let i as UInt64: out.append(contentsOf: String(i).utf8)
            case let i as Int32: out.append(contentsOf: String(i).utf8)
            case let d as Double:
                guard d.isFinite else { throw InvalidValue() }
                var s = d.description
                if s.hasSuffix(".0") { s.removeLast(2) }
                out.append(contentsOf: s.utf8)
            case let s as String: string(s)
            case let a as [Any]:
                out.append(UInt8(ascii: "["))
                if pretty { out.append(10) }
                for (n, e) in a.enumerated() {
                    if n > 0 { out.append(contentsOf: (pretty ? ",\n" : ",").utf8) }
                    if pretty { indent(depth + 1) }
                    try write(e, depth: depth + 1)
                }
                close("]", depth)
            case let o as [String: Any]:
                out.append(UInt8(ascii: "{"))
                if pretty { out.append(10) }
                for (n, key) in o.keys.sorted(by: JSONAny.keyOrder).enumerated() {
                    if n > 0 { out.append(contentsOf: (pretty ? ",\n" : ",").utf8) }
                    if pretty { indent(depth + 1) }
                    string(key)
                    out.append(contentsOf: (pretty ? " : " : ":").utf8)
                    try write(o[key]!, depth: depth + 1)
                }
                close("}", depth)
            default: throw InvalidValue()
            }
        }

        mutating func close(_ bracket: Unicode.Scalar, _ depth: Int) {
            if pretty { out.append(10); indent(depth) }
            out.append(UInt8(ascii: bracket))
        }

        mutating func string(_ s: String) {
            let hex = Array("0123456789abcdef".utf8)
            out.append(UInt8(ascii: "\""))
            for b in s.utf8 {
                switch b {
                case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
                case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
                case UInt8(ascii: "/"): out.append(contentsOf: (options.contains(.withoutEscapingSlashes) ? "/" : "\\/").utf8)
                case 10: out.append(contentsOf: "\\n".utf8)
                case 13: out.append(contentsOf: "\\r".utf8)
                case 9: out.append(contentsOf: "\\t".utf8)
                case 8: out.append(contentsOf: "\\b".utf8)
                case 12: out.append(contentsOf: "\\f".utf8)
                case 0..<0x20: out.append(contentsOf: "\\u00".utf8); out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 15)])
                default: out.append(b)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
    }

    /// `.sortedKeys`' order: digit runs compared as numbers, letters case-insensitively, and on a
    /// tie the lowercase spelling first.
    static func keyOrder(_ a: String, _ b: String) -> Bool {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        var i = 0, j = 0
        while i < x.count && j < y.count {
            if x[i].properties.numericType == .decimal && y[j].properties.numericType == .decimal,
                x[i].isASCII, y[j].isASCII
            {
                var ei = i, ej = j
                while ei < x.count && x[ei].isASCII && x[ei].properties.numericType == .decimal { ei += 1 }
                while ej < y.count && y[ej].isASCII && y[ej].properties.numericType == .decimal { ej += 1 }
                let p = String(String.UnicodeScalarView(x[i..<ei])), q = String(String.UnicodeScalarView(y[j..<ej]))
                let ps = p.drop(while: { $0 == "0" }), qs = q.drop(while: { $0 == "0" })
                if ps.count != qs.count { return ps.count < qs.count }
                if ps != qs { return ps < qs }
                i = ei; j = ej
                continue
            }
            let l = x[i].properties.lowercaseMapping, r = y[j].properties.lowercaseMapping
            if l != r { return l.unicodeScalars.map(\.value).lexicographicallyPrecedes(r.unicodeScalars.map(\.value)) }
            i += 1; j += 1
        }
        if x.count - i != y.count - j { return x.count - i < y.count - j }
        for (p, q) in zip(x, y) where p != q { return p.properties.isLowercase }
        return false
    }
}

/// JSON `null` in `JSONAny` values (`NSNull` before).
public enum JSONNull: Sendable { case null }
