/// A local image name as udocker keeps it: `repos/<name>/<tag>`. The name is what the user typed
/// (with a registry host if one was typed); the tag defaults to `latest`; `name@sha256:…` keeps the
/// digest as the tag directory name.
public struct LocalImageName: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var tag: String

    public init(name: String, tag: String) { self.name = name; self.tag = tag }

    /// Splits `name[:tag]` or `name@digest`. Rejects empty parts, `..` components and characters
    /// outside udocker's set, so a name can never address a path outside `repos/`.
    public init(parsing spec: String) throws {
        var name = spec
        var tag = "latest"
        if let at = spec.firstIndex(of: "@") {
            name = String(spec[..<at]); tag = String(spec[spec.index(after: at)...])
        } else if let colon = spec.lastIndex(of: ":"), !spec[colon...].contains("/") {
            name = String(spec[..<colon]); tag = String(spec[spec.index(after: colon)...])
        }
        try self.init(validating: name, tag: tag, spec: spec)
    }

    public init(validating name: String, tag: String, spec: String? = nil) throws {
        let shown = spec ?? "\(name):\(tag)"
        func bad(_ why: String) -> StoreError { StoreError("invalid image name '\(shown)': \(why)") }
        guard !name.isEmpty else { throw bad("empty name") }
        guard !tag.isEmpty else { throw bad("empty tag") }
        guard name.utf8.count <= 255 else { throw bad("name longer than 255 characters") }
        guard tag.utf8.count <= 128 || tag.hasPrefix("sha256:") || tag.hasPrefix("sha512:") else {
            throw bad("tag longer than 128 characters")
        }
        let allowed: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || "-_./:".contains($0)) }
        guard name.allSatisfy(allowed), let f = name.first, f.isLetter || f.isNumber else { throw bad("invalid characters") }
        guard tag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) }), tag.first != "." else {
            throw bad("invalid tag")
        }
        let comps = name.split(separator: "/", omittingEmptySubsequences: false)
        guard comps.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.hasPrefix(".") }) else {
            throw bad("invalid path component")
        }
        self.name = name; self.tag = tag
    }

    public var description: String { "\(name):\(tag)" }
}
