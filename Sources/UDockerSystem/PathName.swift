/// Lexical helpers for container paths (no file system access).
public enum PathName {
    /// Splits into components, dropping empty ones and ".".
    public static func components(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init).filter { $0 != "." }
    }

    /// Absolute, "." and ".." removed lexically (".." never goes above "/"), no trailing slash.
    public static func normalize(_ path: String) -> String {
        var out: [String] = []
        for c in components(path) {
            if c == ".." { if !out.isEmpty { out.removeLast() } } else { out.append(c) }
        }
        return "/" + join(out)
    }

    /// Components joined by `/` (`Format.joined`: 2 % of a run went to the generic one).
    public static func join(_ parts: [String]) -> String { Format.joined(parts, separator: "/") }

    /// Component-wise prefix test: `/a/b` is under `/a` but not under `/a/b2` or `/ab`.
    public static func isUnder(_ path: String, _ prefix: String) -> Bool {
        let p = components(path), q = components(prefix)
        return p.count >= q.count && Array(p.prefix(q.count)) == q
    }

    public static func basename(_ path: String) -> String { components(path).last ?? "/" }
}
