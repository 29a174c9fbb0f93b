/// A direct reading of an image configuration, for the run path: `JSONDecoder` resolves its keyed
/// containers and every generic field type at run time (a run spent 6 % of its CPU in it), this
/// reads the bytes once. Strict JSON (RFC 8259) only; it answers `nil` for anything it does not
/// read with certainty — malformed or lenient input (trailing commas, a byte-order mark, loose
/// numbers), a wrong field type, a duplicate key, a lone surrogate, a nesting deeper than 512 — and
/// the caller then decodes with `JSONDecoder`, so every value it returns is the one `JSONDecoder`
/// returns and every refusal keeps `JSONDecoder`'s words (`ImageConfigFastTests` holds both to it).
extension ImageConfig {
    public static func fastDecode(_ bytes: [UInt8]) -> ImageConfig? {
        var reader = StrictJSON(bytes)
        guard let config = reader.imageConfig(), reader.atEnd() else { return nil }
        return config
    }
}

/// The strict reader behind `ImageConfig.fastDecode`: a cursor over the bytes, `nil` on any doubt.
struct StrictJSON {
    private let b: [UInt8]
    private var i = 0
    private var depth = 0

    init(_ bytes: [UInt8]) { b = bytes }

    // MARK: the image configuration's shape

    mutating func imageConfig() -> ImageConfig? {
        var c = ImageConfig()
        let ok = object { key, r in
            switch key {
            case "architecture": return r.optionalString(&c.architecture)
            case "os": return r.optionalString(&c.os)
            case "variant": return r.optionalString(&c.variant)
            case "created": return r.optionalString(&c.created)
            case "author": return r.optionalString(&c.author)
            case "config": return r.optional(&c.config) { $0.runConfig() }
            case "container_config": return r.optional(&c.containerConfig) { $0.runConfig() }
            case "rootfs": return r.optional(&c.rootfs) { $0.rootFS() }
            default: return r.skipValue()
            }
        }
        return ok ? c : nil
    }

    mutating func runConfig() -> ImageConfig.Config? {
        var c = ImageConfig.Config()
        let ok = object { key, r in
            switch key {
            case "User": return r.optionalString(&c.user)
            case "Env": return r.optional(&c.env) { $0.strings() }
            case "Entrypoint": return r.optional(&c.entrypoint) { $0.strings() }
            case "Cmd": return r.optional(&c.cmd) { $0.strings() }
            case "WorkingDir": return r.optionalString(&c.workingDir)
            case "Hostname": return r.optionalString(&c.hostname)
            case "Domainname": return r.optionalString(&c.domainname)
            case "ExposedPorts": return r.optional(&c.exposedPorts) { $0.emptySet() }
            case "Volumes": return r.optional(&c.volumes) { $0.emptySet() }
            case "Labels": return r.optional(&c.labels) { $0.stringMap() }
            case "StopSignal": return r.optionalString(&c.stopSignal)
            default: return r.skipValue()
            }
        }
        return ok ? c : nil
    }

    mutating func rootFS() -> ImageConfig.RootFS? {
        var type: String?
        var ids: [Digest]?
        let ok = object { key, r in
            switch key {
            case "type": type = r.string(); return type != nil
            case "diff_ids":
                guard let s = r.strings() else { return false }
                var out: [Digest] = []
                for d in s {
                    guard let digest = try? Digest(parsing: d) else { return false }
                    out.append(digest)
                }
                ids = out
                return true
            default: return r.skipValue()
            }
        }
        guard ok, let type, let ids else { return nil }
        return ImageConfig.RootFS(type: type, diffIDs: ids)
    }

    /// `{"80/tcp": {}}`: each value an object (its content ignored, as `Empty` ignores it).
    mutating func emptySet() -> [String: ImageConfig.Empty]? {
        var out: [String: ImageConfig.Empty] = [:]
        let ok = object { key, r in
            guard r.peek() == UInt8(ascii: "{"), r.skipValue() else { return false }
            out[key] = ImageConfig.Empty()
            return true
        }
        return ok ? out : nil
    }

    mutating func stringMap() -> [String: String]? {
        var out: [String: String] = [:]
        let ok = object { key, r in
            guard let v = r.string() else { return false }
            out[key] = v
            return true
        }
        return ok ? out : nil
    }

    mutating func strings() -> [String]? {
        guard expect(UInt8(ascii: "[")) else { return nil }
        var out: [String] = []
        if consume(UInt8(ascii: "]")) { return out }
        repeat {
            guard let s = string() else { return nil }
            out.append(s)
        } while consume(UInt8(ascii: ","))
        return expect(UInt8(ascii: "]")) ? out : nil
    }

    // MARK: fields: null is absent, as `decodeIfPresent` reads it

    mutating func optionalString(_ field: inout String?) -> Bool {
        optional(&field) { $0.string() }
    }

    mutating func optional<T>(_ field: inout T?, _ read: (inout StrictJSON) -> T?) -> Bool {
        if literal("null") { field = nil; return true }
        guard let v = read(&self) else { return false }
        field = v
        return true
    }

    // MARK: JSON

    /// An object; `member` reads each value (the cursor is on it). A repeated key is a refusal:
    /// `JSONDecoder` keeps the first, which is not worth imitating here.
    mutating func object(_ member: (String, inout StrictJSON) -> Bool) -> Bool {
        guard expect(UInt8(ascii: "{")), enter() else { return false }
        defer { depth -= 1 }
        if consume(UInt8(ascii: "}")) { return true }
        var seen = Set<String>()  // a list made a crafted object of many keys quadratic
        repeat {
            guard let key = string(), seen.insert(key).inserted, expect(UInt8(ascii: ":")) else { return false }
            skipBlank()
            guard member(key, &self) else { return false }
        } while consume(UInt8(ascii: ","))
        return expect(UInt8(ascii: "}"))
    }

    /// Any value, checked and dropped.
    mutating func skipValue() -> Bool {
        skipBlank()
        guard let c = peek() else { return false }
        switch c {
        case UInt8(ascii: "{"): return object { _, r in r.skipValue() }
        case UInt8(ascii: "["):
            i += 1
            guard enter() else { return false }
            defer { depth -= 1 }
            if consume(UInt8(ascii: "]")) { return true }
            repeat { guard skipValue() else { return false } } while consume(UInt8(ascii: ","))
            return expect(UInt8(ascii: "]"))
        case UInt8(ascii: "\""): return string() != nil
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        default: return number()
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    mutating func number() -> Bool {
        _ = consume(UInt8(ascii: "-"), blank: false)
        guard let first = peek(), isDigit(first) else { return false }
        i += 1
        if first != UInt8(ascii: "0") { while let d = peek(), isDigit(d) { i += 1 } }
        if consume(UInt8(ascii: "."), blank: false) { guard digits() else { return false } }
        if consume(UInt8(ascii: "e"), blank: false) || consume(UInt8(ascii: "E"), blank: false) {
            if !consume(UInt8(ascii: "+"), blank: false) { _ = consume(UInt8(ascii: "-"), blank: false) }
            guard digits() else { return false }
        }
        // a number ends at a delimiter: `01`, `1x` are refusals
        guard let next = peek() else { return true }
        return isBlank(next) || next == UInt8(ascii: ",") || next == UInt8(ascii: "}") || next == UInt8(ascii: "]")
    }

    /// A string, unescaped; nil for a control character, a bad escape, a lone surrogate or bytes
    /// that are not UTF-8.
    mutating func string() -> String? {
        skipBlank()
        guard consume(UInt8(ascii: "\""), blank: false) else { return nil }
        var out: [UInt8] = []
        while let c = peek() {
            i += 1
            switch c {
            case UInt8(ascii: "\""): return String(validating: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let e = peek() else { return nil }
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard consume(UInt8(ascii: "\\"), blank: false), consume(UInt8(ascii: "u"), blank: false),
                            let low = hex4(), (0xDC00..<0xE000).contains(low)
                        else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        return nil
                    }
                    guard let u = Unicode.Scalar(scalar) else { return nil }
                    out.append(contentsOf: UTF8.encode(u)!)
                default: return nil
                }
            default:
                guard c >= 0x20 else { return nil }
                out.append(c)
            }
        }
        return nil
    }

    mutating func atEnd() -> Bool {
        skipBlank()
        return i == b.count
    }

    // MARK: cursor

    private func peek() -> UInt8? { i < b.count ? b[i] : nil }
    private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    private func isBlank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }

    private mutating func skipBlank() { while let c = peek(), isBlank(c) { i += 1 } }

    private mutating func enter() -> Bool {
        depth += 1
        return depth <= 512
    }

    private mutating func consume(_ c: UInt8, blank: Bool = true) -> Bool {
        if blank { skipBlank() }
        guard peek() == c else { return false }
        i += 1
        return true
    }

    private mutating func expect(_ c: UInt8) -> Bool { consume(c) }

    private mutating func digits() -> Bool {
        guard let d = peek(), isDigit(d) else { return false }
        while let d = peek(), isDigit(d) { i += 1 }
        return true
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        skipBlank()
        let n = word.utf8CodeUnitCount
        guard i + n <= b.count else { return false }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { return false }
        // `truex` is not `true`
        if i + n < b.count {
            let next = b[i + n]
            if (next >= UInt8(ascii: "a") && next <= UInt8(ascii: "z")) || isDigit(next) { return false }
        }
        i += n
        return true
    }

    private mutating func hex4() -> UInt32? {
        guard i + 4 <= b.count else { return nil }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: return nil
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }
}
