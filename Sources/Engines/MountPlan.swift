import FoundationEssentials
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif
/// The plan's mounts made ready for engines that bind them beneath ROOT themselves (N1, R, S1):
/// computed once from `ExecutionPlan.mounts` (volumes, sysdirs, auth files, GPU and MPI binds),
/// each engine renders the result in its own syntax.
enum MountPlan {
    /// Resolves every mount target inside ROOT (symlinks followed within ROOT only), creates the
    /// missing mountpoints there (no symlink followed), and orders parents before children.
    static func resolve(_ plan: ExecutionPlan, messages: Messages) throws -> [BindMount] {
        let root = try RootDirectory(path: plan.root)
        var result: [(source: String, target: String, depth: Int, index: Int)] = []
        for (index, m) in plan.mounts.enumerated() {
            func drop(_ why: String) throws {
                if m.isSysdir { messages.verbose("N1: not binding \(m.source): \(why)"); return }
                throw EngineError(.io, "volume \(m.source):\(m.target): \(why)")
            }
            // Beneath another volume: the mountpoint lives in that host directory.
            let enclosing =
                plan.mounts.prefix(index).contains { PathName.isUnder(m.target, $0.target) && $0.target != m.target }
                || plan.mounts.suffix(from: index + 1).contains { PathName.isUnder(m.target, $0.target) && $0.target != m.target }
            if enclosing {
                result.append((m.source, m.target, PathName.components(m.target).count, index))
                continue
            }
            let r: RootDirectory.Resolved
            do { r = try root.resolve(m.target) } catch {
                try drop("the mountpoint \(m.target) cannot be resolved in the container"); continue
            }
            if r.path != m.target,
                plan.mounts.contains(where: { $0.target != m.target && PathName.isUnder(r.path, $0.target) })
            {
                try drop("the mountpoint \(m.target) is a symlink into another volume (\(r.path))"); continue
            }
            if r.path == "/" { try drop("the mountpoint \(m.target) resolves to /"); continue }
            if !r.exists {
                let existed = deepestExisting(r.path, in: root)
                do { try root.makeMountpoint(r.path, directory: m.isDirectory) } catch {
                    try drop("cannot create the mountpoint \(r.path) in the container: \(error)"); continue
                }
                record(r.path, existed: existed, plan: plan)
            } else if r.isDirectory != m.isDirectory {
                try drop(
                    m.isDirectory
                        ? "\(m.target) is not a directory in the container"
                        : "\(m.target) is a directory in the container");
                continue
            }
            result.append((m.source, r.path, PathName.components(r.path).count, index))
        }
        result.sort { ($0.depth, $0.index) < ($1.depth, $1.index) }
        return result.map { BindMount(source: $0.source, target: $0.target, readOnly: plan.mounts[$0.index].readOnly) }
    }

    /// The deepest ancestor of a canonical container path that exists ("/" at worst).
    static func deepestExisting(_ path: String, in root: RootDirectory) -> String {
        var parts = PathName.components(path)
        while !parts.isEmpty {
            parts.removeLast()
            let p = "/" + parts.joined(separator: "/")
            if let r = try? root.resolve(p), r.exists { return p }
        }
        return "/"
    }

    /// Records a mountpoint created in ROOT as udocker does (`containers/<id>/.mountpoints/`,
    /// `#etc#OpenCL#vendors#nvidia.icd` → `#etc`, the deepest path that existed), so that
    /// `setup --purge` removes it and what was made for it. Only for a flat container in its
    /// own directory (not `--location`, not overlay); best effort.
    static func record(_ path: String, existed: String, plan: ExecutionPlan) {
        let c = plan.container
        guard c.overlay == nil, c.root == c.directory + "/ROOT" else { return }
        let dir = c.directory + "/.mountpoints"
        var st = stat()
        if lstat(dir, &st) != 0 {
            guard mkdir(dir, 0o755) == 0 || errno == EEXIST else { return }
        } else if st.st_mode & S_IFMT != S_IFDIR {
            return
        }
        _ = symlink(existed.replacing("/", with: "#"), dir + "/" + path.replacing("/", with: "#"))
    }
}
