/// A bad image name, with a one-line reason.
public enum ReferenceError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalid(String, reason: String)

    public var description: String {
        switch self {
        case .invalid(let s, let reason):
            let shown = s.count > 80 ? String(s.prefix(77)) + "..." : s
            return "invalid image reference '\(shown)': \(reason)"
        }
    }
}

/// An image name as the user typed it: `[registry/]path[:tag][@digest]`.
///
/// The grammar is the Docker distribution one (lowercase path components separated by `.`, `_`,
/// `__` or dashes; tags `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a registry is a first component that
/// contains `.` or `:` or is `localhost`), which is stricter than udocker's regex: it refuses `..`,
/// uppercase paths and empty components before anything is turned into a path or a URL.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// The registry host (with port) when the name carries one, e.g. `127.0.0.1:5000`, `quay.io`.
    public var registry: String?
    /// The repository path without the registry, as typed (`debian`, `library/debian`).
    public var repository: String
    /// The tag, `latest` by default.
    public var tag: String
    /// The digest when the name is pinned with `@sha256:…`.
    public var digest: Digest?

    public static let maxNameLength = 255
    public static let maxTagLength = 128

    public init(registry: String?, repository: String, tag: String = "latest", digest: Digest? = nil) {
        self.registry = registry; self.repository = repository; self.tag = tag; self.digest = digest
    }

    public init(parsing input: String) throws {
        func fail(_ reason: String) -> ReferenceError { .invalid(input, reason: reason) }
        guard !input.isEmpty else { throw fail("empty name") }
        guard input.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
            throw fail("only printable ASCII without spaces is allowed")
        }
        var rest = Substring(input)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let d = String(rest[rest.index(after: at)...])
            do { digest = try Digest(parsing: d) } catch {
                throw fail("bad digest '\(d.prefix(80))' (expected sha256:<64 hex> or sha512:<128 hex>)")
            }
            rest = rest[..<at]
        }
        var tag: String?
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let t = String(rest[rest.index(after: colon)...])
            guard !t.isEmpty else { throw fail("empty tag") }
            guard t.utf8.count <= ImageReference.maxTagLength else {
                throw fail("tag longer than \(ImageReference.maxTagLength) characters")
            }
            guard ImageReference.isValidTag(t) else {
                throw fail("bad tag '\(t)' (letters, digits, '_', '.', '-'; not starting with '.' or '-')")
            }
            tag = t
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { throw fail("empty repository name") }
        guard rest.utf8.count <= ImageReference.maxNameLength else {
            throw fail("name longer than \(ImageReference.maxNameLength) characters")
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var registry: String?
        if components.count > 1 {
            let first = components[0]
            if first.contains(".") || first.contains(":") || first == "localhost" {
                guard ImageReference.isValidRegistry(first) else { throw fail("bad registry host '\(first)'") }
                registry = first
                components.removeFirst()
            }
        }
        for c in components {
            guard !c.isEmpty else { throw fail("empty path component") }
            guard ImageReference.isValidPathComponent(c) else {
                if c.contains(where: { $0.isUppercase }) {
                    throw fail("repository names must be lowercase ('\(c)')")
                }
                throw fail("bad path component '\(c)' (lowercase letters and digits separated by '.', '_', '__' or '-')")
            }
        }
        self.registry = registry
        self.repository = components.joined(separator: "/")
        self.tag = tag ?? "latest"
        self.digest = digest
    }

    /// Where udocker keeps the image: `repos/<localName>/<localTag>`.
    public var localName: String { registry.map { "\($0)/\(repository)" } ?? repository }
    /// The digest string when pinned by digest, else the tag.
    public var localTag: String { digest?.description ?? tag }

    public var description: String {
        if let digest { return "\(localName)@\(digest)" }
        return "\(localName):\(tag)"
    }

    // MARK: grammar

    static func isAlnumLower(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) }
    static func isAlnum(_ b: UInt8) -> Bool { isAlnumLower(b) || (b >= 0x41 && b <= 0x5a) }

    /// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
    static func isValidPathComponent(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let f = b.first, let l = b.last, isAlnumLower(f), isAlnumLower(l) else { return false }
        var i = 0
        while i < b.count {
            if isAlnumLower(b[i]) { i += 1; continue }
            // a separator run
            var j = i
            while j < b.count && !isAlnumLower(b[j]) { j += 1 }
            let sep = b[i..<j]
            let ok =
                sep.elementsEqual([0x2e]) || sep.elementsEqual([0x5f]) || sep.elementsEqual([0x5f, 0x5f])
                || sep.allSatisfy { $0 == 0x2d }
            if !ok { return false }
            i = j
        }
        return true
    }

    /// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
    static func isValidTag(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard let f = b.first, isAlnum(f) || f == 0x5f else { return false }
        return b.allSatisfy { isAlnum($0) || $0 == 0x5f || $0 == 0x2e || $0 == 0x2d }
    }

    /// A host name, an IPv4 address or a bracketed IPv6 address, with an optional `:port`.
    static func isValidRegistry(_ s: String) -> Bool {
        var host = Substring(s)
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let inner = host[host.index(after: host.startIndex)..<close]
            guard !inner.isEmpty, inner.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return false }
            let after = host[host.index(after: close)...]
            if after.isEmpty { return true }
            guard after.hasPrefix(":") else { return false }
            return isValidPort(after.dropFirst())
        }
        if let colon = host.firstIndex(of: ":") {
            guard isValidPort(host[host.index(after: colon)...]) else { return false }
            host = host[..<colon]
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return !labels.isEmpty
            && labels.allSatisfy { label in
                let b = Array(label.utf8)
                guard let f = b.first, let l = b.last, isAlnum(f), isAlnum(l), b.count <= 63 else { return false }
                return b.allSatisfy { isAlnum($0) || $0 == 0x2d }
            }
    }

    static func isValidPort(_ s: Substring) -> Bool {
        guard !s.isEmpty, s.count <= 5, s.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(s) else { return false }
        return n > 0 && n < 65536
    }
}
