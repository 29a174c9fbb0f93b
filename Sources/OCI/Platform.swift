/// An image platform `os/architecture[/variant]`.
public struct Platform: Codable, Sendable, Hashable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?
    public var osVersion: String?

    enum CodingKeys: String, CodingKey {
        case os, architecture, variant
        case osVersion = "os.version"
    }

    public init(os: String, architecture: String, variant: String? = nil) {
        self.os = os; self.architecture = architecture; self.variant = variant
    }

    public enum ParseError: Error, CustomStringConvertible {
        case invalid(String)
        public var description: String {
            switch self {
            case .invalid(let s): return "invalid platform '\(s)': expected os/arch[/variant]"
            }
        }
    }

    /// Parses `os/arch[/variant]` (as `--platform` takes it); `arch` alone means `linux/arch`.
    public init(parsing s: String) throws {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count),
            parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." } })
        else { throw ParseError.invalid(s) }
        if parts.count == 1 {
            self.init(os: "linux", architecture: Platform.normalize(arch: parts[0]))
        } else {
            self.init(
                os: parts[0].lowercased(), architecture: Platform.normalize(arch: parts[1]), variant: parts.count == 3 ? parts[2] : nil)
        }
    }

    public var description: String {
        variant.map { "\(os)/\(architecture)/\($0)" } ?? "\(os)/\(architecture)"
    }

    /// Maps uname/udocker architecture names to the OCI ones.
    public static func normalize(arch: String) -> String {
        switch arch.lowercased() {
        case "x86_64", "x86-64", "amd64": return "amd64"
        case "aarch64", "arm64": return "arm64"
        case "i386", "i686", "x86", "386": return "386"
        case "armhf", "armel", "arm", "armv7l", "armv6l": return "arm"
        case "ppc64le": return "ppc64le"
        case "s390x": return "s390x"
        case "riscv64": return "riscv64"
        default: return arch.lowercased()
        }
    }

    /// The platform this binary runs on (no variant, as udocker).
    public static var host: Platform {
        #if arch(x86_64)
        return Platform(os: "linux", architecture: "amd64")
        #elseif arch(arm64)
        return Platform(os: "linux", architecture: "arm64")
        #elseif arch(arm)
        return Platform(os: "linux", architecture: "arm")
        #elseif arch(powerpc64le)
        return Platform(os: "linux", architecture: "ppc64le")
        #elseif arch(s390x)
        return Platform(os: "linux", architecture: "s390x")
        #else
        return Platform(os: "linux", architecture: "unknown")
        #endif
    }

    /// udocker's matching: empty fields of `self` (the request) are wildcards.
    public func matches(_ candidate: Platform?) -> Bool {
        guard let c = candidate else { return false }
        if !os.isEmpty && os != c.os { return false }
        if !architecture.isEmpty && architecture != c.architecture { return false }
        if let v = variant, !v.isEmpty, v != (c.variant ?? "") { return false }
        return true
    }
}
