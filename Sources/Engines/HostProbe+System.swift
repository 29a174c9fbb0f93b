import CLinux
import UDockerSystem

#if canImport(Glibc)
import Glibc
#endif

/// `doctor`'s first line: the C library and kernel this host runs, and which kernel features each
/// engine needs that this kernel has (README, "Supported systems"). The binary itself needs glibc
/// ≥ 2.28 (it would not have started otherwise).
struct SystemCheck: HostCheck {
    func run(_ context: HostCheckContext) -> [HostFinding] {
        let libc = String(cString: cl_libc_version())
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let machine = withUnsafeBytes(of: &u.machine) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let kernel = Self.kernelVersion(release)
        func has(_ major: Int, _ minor: Int) -> String {
            guard let kernel else { return "unknown" }
            return kernel >= (major, minor) ? "yes" : "no (needs Linux ≥ \(major).\(minor))"
        }
        return [
            HostFinding(
                check: "host", status: .ok, summary: "glibc \(libc), Linux \(release) \(machine)",
                details: [
                    "overlayfs in a user namespace (--storage=overlay): \(has(5, 11))",
                    "FUSE in a user namespace: \(has(4, 18))",
                ])
        ]
    }

    /// "6.1.0-28-amd64" → (6, 1); nil when the release does not start with two numbers.
    static func kernelVersion(_ release: String) -> (Int, Int)? {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return parts.count == 2 ? (parts[0], parts[1]) : nil
    }
}
