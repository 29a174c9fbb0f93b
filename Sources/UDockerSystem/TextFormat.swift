// Text helpers that replace Foundation-only API (String(format:), trimmingCharacters,
// NSString path methods, padding(toLength:)): the binary links FoundationEssentials only, which
// keeps ICU and its 34 MB of data out of it (docs/benchmarks.md, footprint).

/// printf-style number formatting, locale-independent.
public enum Format {
    /// Lowercase hex, two digits per byte (`%02x` per byte).
    public static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// `%.Nf`: `value` with `digits` decimals, rounded half to even.
    public static func fixed(_ value: Double, digits: Int = 1) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded(.toNearestOrEven)
        let whole = UInt64(scaled / scale), frac = UInt64(scaled - Double(whole) * scale)
        var s = (value < 0 && scaled != 0 ? "-" : "") + String(whole)
        if digits > 0 { s += "." + padded(String(frac), width: digits, with: "0") }
        return s
    }

    /// `parts` joined by `separator`, without the generic `joined(separator:)`: its first call
    /// resolves associated types at run time, 0.1 ms on the run path (PathName, Configuration).
    public static func joined(_ parts: [String], separator: String) -> String {
        var out = ""
        for i in parts.indices { out += i == parts.startIndex ? parts[i] : separator + parts[i] }
        return out
    }

    /// Text that came from elsewhere (registry JSON, image configs, tar entry names) made safe to
    /// print on a terminal: C0 controls (but tab, and newline when `newlines`), DEL and the C1
    /// controls become `\xNN`, so no escape sequence from a registry or an image reaches the
    /// screen (no retitled window, cleared screen, fake `Info:` line, terminal query). The one
    /// sanitiser for remote strings: the output renderer applies it to every message, commands to
    /// the remote data they print on stdout (security review N4).
    public static func printable(_ text: String, newlines: Bool = false) -> String {
        func unsafe(_ v: UInt32) -> Bool {
            (v < 0x20 && v != 0x09 && !(newlines && v == 0x0A)) || (0x7F...0x9F).contains(v)
        }
        // Fast path: ASCII controls are single bytes, C1 controls are 0xC2 0x80-0x9F in UTF-8.
        var clean = true
        var previous: UInt8 = 0
        for b in text.utf8 {
            if (b < 0x20 && b != 0x09 && !(newlines && b == 0x0A)) || b == 0x7F || (previous == 0xC2 && b >= 0x80 && b <= 0x9F) {
                clean = false
                break
            }
            previous = b
        }
        if clean { return text }
        var out = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            if unsafe(u.value) {
                out.append(contentsOf: "\\x\(padded(String(u.value, radix: 16, uppercase: true), width: 2, with: "0"))".unicodeScalars)
            } else {
                out.append(u)
            }
        }
        return String(out)
    }

    /// `%0Nd` / `%Nd` / `%0NX`: `text` right-aligned in `width` (never truncated).
    public static func padded(_ text: String, width: Int, with pad: Character = " ") -> String {
        let n = text.count
        return n >= width ? text : String(repeating: pad, count: width - n) + text
    }

    /// `padding(toLength:withPad:" ",startingAt:0)`: `text` left-aligned in exactly `width`
    /// characters (cut when longer).
    public static func column(_ text: String, width: Int) -> String {
        let n = text.count
        return n >= width ? String(text.prefix(width)) : text + String(repeating: " ", count: width - n)
    }
}

extension StringProtocol {
    /// Without leading and trailing whitespace and newlines (`.whitespacesAndNewlines`).
    /// (Inlinable, like the rest of this extension: unspecialised, its first call resolved the
    /// string type's associated types at run time, 3 % of a run.)
    @inlinable public func trimmed() -> String { trimmed(where: { $0.isWhitespace }) }

    /// Without leading and trailing characters matching `strip`.
    @inlinable public func trimmed(where strip: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !strip($0) }) else { return "" }
        let last = lastIndex(where: { !strip($0) })!
        return String(self[first...last])
    }
}

extension Character {
    /// `.whitespaces`: blanks, no line breaks.
    public var isBlank: Bool { isWhitespace && !isNewline }
}

extension PathName {
    /// `NSString.lastPathComponent`: the last component ("/" for "/", "" for "").
    public static func lastComponent(_ path: String) -> String {
        let trimmed = stripTrailingSlashes(path)
        if trimmed.isEmpty { return path.isEmpty ? "" : "/" }
        guard let slash = trimmed.lastIndex(of: "/") else { return trimmed }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// `NSString.deletingLastPathComponent`: "/a/b" → "/a", "/a" → "/", "a" → "", "/" → "/".
    public static func parent(_ path: String) -> String {
        let trimmed = stripTrailingSlashes(path)
        if trimmed.isEmpty { return path.isEmpty ? "" : "/" }
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        let head = stripTrailingSlashes(String(trimmed[..<slash]))
        return head.isEmpty ? "/" : head
    }

    private static func stripTrailingSlashes(_ path: String) -> String {
        var s = Substring(path)
        while s.hasSuffix("/") { s = s.dropLast() }
        return String(s)
    }
}

extension StringProtocol {
    /// `removingPercentEncoding`: every `%XX` decoded; nil for a malformed escape or bytes that
    /// are not UTF-8.
    public var percentDecoded: String? {
        var out: [UInt8] = []
        var bytes = Array(utf8)[...]
        func digit(_ b: UInt8) -> UInt8? {
            switch b {
            case 0x30...0x39: b - 0x30
            case 0x41...0x46: b - 0x37
            case 0x61...0x66: b - 0x57
            default: nil
            }
        }
        while let b = bytes.popFirst() {
            guard b == UInt8(ascii: "%") else { out.append(b); continue }
            guard bytes.count >= 2, let h = digit(bytes.removeFirst()), let l = digit(bytes.removeFirst()) else { return nil }
            out.append(h << 4 | l)
        }
        return String(validating: out, as: UTF8.self)
    }
}
