import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

/// R1 as the invoking user (not container root): the plan's user is you (`--user=$(id -u)`, or the
/// job hook `jobUser` for a rank of an MPI job, whose PMIx server accepts only your uid).
///
/// A rootless runc maps only container root onto your uid, and runc needs container root mapped
/// (it chowns its exec fifo to it). So the runtime runs inside an outer user namespace that we
/// create with util-linux `unshare` (≥ 2.38) and `newuidmap`/`newgidmap`: outer 0 = you, outer 1 =
/// the first id of your /etc/subuid (/etc/subgid) range; and a mount namespace owned by it (runc
/// opens bind sources from the "host" mount namespace). Inside, runc maps container `<you>` →
/// outer 0 (your uid on the host) and container root → outer 1 (a subordinate id, which owns no
/// file of yours). The command runs as your uid and gid, like rootless Podman's `--userns=keep-id`.
struct RuncIdentity: Sendable, Equatable {
    /// Your uid and gid (the container user, and what the host sees).
    var uid: UInt32
    var gid: UInt32
    /// The first subordinate uid and gid (container root).
    var subUID: UInt32
    var subGID: UInt32
    /// util-linux unshare.
    var unshare: String

    /// The wrapper before the runtime's argv: the outer user and mount namespaces.
    var wrapper: [String] {
        [
            unshare, "--mount", "--map-root-user", "--map-users=\(subUID),1,1", "--map-groups=\(subGID),1,1", "--",
        ]
    }

    /// The runtime's mappings, in outer-namespace ids.
    var uidMappings: [OCIRuntimeSpec.IDMapping] {
        [.init(containerID: 0, hostID: 1, size: 1), .init(containerID: uid, hostID: 0, size: 1)]
    }
    var gidMappings: [OCIRuntimeSpec.IDMapping] {
        gid == 0
            ? [.init(containerID: 0, hostID: 0, size: 1)]
            : [.init(containerID: 0, hostID: 1, size: 1), .init(containerID: gid, hostID: 0, size: 1)]
    }

    /// Why R1 cannot run a command as the invoking user on this host, or nil when it can.
    static func unavailableReason(environment: [String: String], uid: UInt32 = getuid()) -> String? {
        if uid == 0 { return "you are root" }
        let path = environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        for tool in ["unshare", "newuidmap", "newgidmap"] where onPath(tool, path) == nil {
            return "\(tool) not found (needs util-linux ≥ 2.38 and uidmap)"
        }
        if firstSubordinateID("/etc/subuid", uid: uid) == nil { return "no /etc/subuid range for your user" }
        if firstSubordinateID("/etc/subgid", uid: uid) == nil { return "no /etc/subgid range for your user" }
        return nil
    }

    /// The outer namespace for running as `uid:gid`, when this host allows it.
    static func make(uid: UInt32, gid: UInt32, environment: [String: String]) -> RuncIdentity? {
        guard unavailableReason(environment: environment, uid: uid) == nil,
            let unshare = onPath("unshare", environment["PATH"] ?? "/usr/bin:/bin"),
            let su = firstSubordinateID("/etc/subuid", uid: uid), let sg = firstSubordinateID("/etc/subgid", uid: uid)
        else { return nil }
        return RuncIdentity(uid: uid, gid: gid, subUID: su, subGID: sg, unshare: unshare)
    }

    static func onPath(_ name: String, _ path: String) -> String? {
        path.split(separator: ":").filter { $0.hasPrefix("/") }.map { "\($0)/\(name)" }.first(where: ToolLocator.isExecutableFile)
    }

    /// The start of the user's first range in a subordinate-id file (`name|uid:start:count`).
    static func firstSubordinateID(_ file: String, uid: UInt32) -> UInt32? {
        var names: Set<String> = [String(uid)]
        if let pw = getpwuid(uid) { names.insert(String(cString: pw.pointee.pw_name)) }
        guard let text = AtomicFile.readString(file) else { return nil }
        for line in text.split(separator: "\n") {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count == 3, names.contains(String(f[0])), let start = UInt32(f[1]), let count = UInt32(f[2]), count > 0,
                start > 0
            else { continue }
            return start
        }
        return nil
    }
}
